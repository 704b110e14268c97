import Decode

/// Counters of IP reassembly.
public struct ReassemblyStats: Sendable {
    public var fragments: UInt64 = 0
    public var datagramsCompleted: UInt64 = 0
    public var datagramsTimedOut: UInt64 = 0
    public var datagramsDroppedForBudget: UInt64 = 0
    public var overlapConflicts: UInt64 = 0
    public var peakBytesHeld: Int = 0
    public init() {}
}

/// Reassembles IPv4 and IPv6 fragments within a memory budget and a time budget.
///
/// Overlapping data is resolved "first copy wins" (as most IDS do for the common policies); overlaps whose bytes
/// differ are counted. Datagrams incomplete after `timeout` are dropped and counted; when the budget is full the
/// oldest incomplete datagrams go first. Only fragments allocate (buffers are recycled); unfragmented traffic
/// never touches this type.
public final class FragmentReassembler {
    final class Datagram {
        let buffer: UnsafeMutableRawBufferPointer
        /// Received byte ranges, sorted and merged.
        var ranges: [(start: Int, end: Int)] = []
        /// Total payload length, known once the last fragment arrived.
        var totalLength: Int = -1
        var firstSeen: UInt64 = 0
        var nextProtocol: UInt8 = 0
        init(capacity: Int) { buffer = .allocate(byteCount: capacity, alignment: 16) }
        deinit { buffer.deallocate() }
    }

    /// What happened to a fragment.
    public enum Result {
        /// Stored; the datagram is not complete yet.
        case incomplete
        /// The datagram is complete: its payload and protocol, valid until the next call.
        case complete(UnsafeRawBufferPointer, ipProtocol: UInt8)
        /// Refused. `datagramPending`: the rest of its datagram is still being reassembled (only this fragment was
        /// refused); otherwise nothing of the datagram is kept.
        case refused(DecodeError, datagramPending: Bool)
    }

    public let memoryBudget: Int
    public let timeoutNanoseconds: UInt64
    public static let maximumDatagram = 65_535
    public private(set) var stats = ReassemblyStats()
    public private(set) var bytesHeld = 0

    private var pending: [FragmentKey: Datagram] = [:]
    /// Datagrams in creation order, for oldest-first expiry. An entry is stale when its key is no longer pending
    /// or is pending again as a newer datagram (different `firstSeen`); stale entries are skipped. `orderHead`
    /// avoids shifting the array on every pop; it is compacted when mostly consumed.
    private var order: [(key: FragmentKey, firstSeen: UInt64)] = []
    private var orderHead = 0
    private var spare: [Datagram] = []
    private var completed: Datagram?
    private var scratchRanges: [(start: Int, end: Int)] = []

    public init(memoryBudget: Int = 32 << 20, timeoutNanoseconds: UInt64 = 30_000_000_000) {
        self.memoryBudget = memoryBudget
        self.timeoutNanoseconds = timeoutNanoseconds
    }

    public var pendingDatagrams: Int { pending.count }

    /// Adds the fragment `info` found in `bytes` (the buffer the decoder read) of packet `p`.
    public func add(_ info: FragmentInfo, bytes: UnsafeRawBufferPointer, packet p: DecodedPacket, now: UInt64) -> Result {
        stats.fragments &+= 1
        // The previous completed datagram may be what `bytes` points into (an inner fragment inside a reassembled
        // outer datagram): recycle it only when this call is done reading.
        let previous = completed
        completed = nil
        defer { if let previous { recycle(previous) } }
        expire(now: now)
        let key = FragmentKey(info, in: p)
        let start = info.fragmentOffset
        let end = start + info.dataLength
        guard end <= Self.maximumDatagram else {
            return .refused(.fragmentTooLarge, datagramPending: pending[key] != nil)
        }
        // Every fragment but the last carries a multiple of 8 bytes (RFC 791, RFC 8200).
        guard !info.moreFragments || info.dataLength % 8 == 0, info.dataLength > 0 || !info.moreFragments else {
            return .refused(.fragmentBadOffset, datagramPending: pending[key] != nil)
        }
        let d: Datagram
        if let existing = pending[key] {
            d = existing
        } else {
            while bytesHeld + Self.maximumDatagram > memoryBudget, let victim = oldestKey() {
                drop(victim)
                stats.datagramsDroppedForBudget &+= 1
            }
            guard bytesHeld + Self.maximumDatagram <= memoryBudget else {
                return .refused(.fragmentBudgetExceeded, datagramPending: false)
            }
            d = spare.popLast() ?? Datagram(capacity: Self.maximumDatagram)
            d.ranges.removeAll(keepingCapacity: true)
            d.totalLength = -1
            d.firstSeen = now
            pending[key] = d
            order.append((key, now))
            bytesHeld += Self.maximumDatagram
            stats.peakBytesHeld = max(stats.peakBytesHeld, bytesHeld)
        }
        if info.isIPv6 || start == 0 { d.nextProtocol = info.nextProtocol }
        if !info.moreFragments {
            // Two different "last" fragments, or data already stored past this end: the datagram cannot be whole.
            if (d.totalLength >= 0 && d.totalLength != end) || (d.ranges.last.map { $0.end > end } ?? false) {
                drop(key)
                return .refused(.fragmentOverlapConflict, datagramPending: false)
            }
            d.totalLength = end
        }
        if d.totalLength >= 0 && end > d.totalLength {
            drop(key)
            return .refused(.fragmentBadOffset, datagramPending: false)
        }
        store(bytes: bytes, from: info.dataOffset, start: start, end: end, into: d)
        guard d.totalLength >= 0, d.ranges.count == 1, d.ranges[0].start == 0, d.ranges[0].end == d.totalLength else {
            return .incomplete
        }
        pending[key] = nil
        bytesHeld -= Self.maximumDatagram
        stats.datagramsCompleted &+= 1
        completed = d
        let length = d.totalLength
        // The buffer stays untouched until `completed` is recycled on the next call.
        return .complete(UnsafeRawBufferPointer(rebasing: d.buffer[0..<length]), ipProtocol: d.nextProtocol)
    }

    /// Copies the parts of [start, end) not received yet (first copy wins) and counts conflicting overlaps.
    private func store(bytes: UnsafeRawBufferPointer, from dataOffset: Int, start: Int, end: Int, into d: Datagram) {
        guard start < end else { return }
        do {
            let buf = d.buffer
            var cursor = start
            var conflict = false
            for r in d.ranges where r.end > start && r.start < end {
                if cursor < r.start {
                    buf.baseAddress!.advanced(by: cursor).copyMemory(
                        from: bytes.baseAddress!.advanced(by: dataOffset + cursor - start), byteCount: r.start - cursor)
                }
                let os = max(r.start, start), oe = min(r.end, end)
                if os < oe && memcmpDiffers(buf.baseAddress! + os, bytes.baseAddress! + dataOffset + os - start, oe - os) {
                    conflict = true
                }
                cursor = max(cursor, r.end)
            }
            if cursor < end {
                buf.baseAddress!.advanced(by: cursor).copyMemory(
                    from: bytes.baseAddress!.advanced(by: dataOffset + cursor - start), byteCount: end - cursor)
            }
            if conflict { stats.overlapConflicts &+= 1 }
        }
        // Merge [start, end) into the sorted ranges.
        // Built in a scratch array that is swapped with the datagram's, so steady state allocates nothing.
        var merged = scratchRanges
        scratchRanges = []  // `merged` now holds the only reference: no copy on write
        merged.removeAll(keepingCapacity: true)
        var s = start, e = end, placed = false
        for r in d.ranges {
            if r.end < s { merged.append(r) } else if r.start > e {
                if !placed { merged.append((s, e)); placed = true }
                merged.append(r)
            } else {
                s = min(s, r.start); e = max(e, r.end)
            }
        }
        if !placed { merged.append((s, e)) }
        scratchRanges = d.ranges
        d.ranges = merged
    }

    private func memcmpDiffers(_ a: UnsafeMutableRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
        for i in 0..<n where a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) {
            return true
        }
        return false
    }

    /// The oldest live entry of `order` (stale ones are skipped for good).
    private func oldestEntry() -> (key: FragmentKey, datagram: Datagram)? {
        while orderHead < order.count {
            let (k, t) = order[orderHead]
            if let d = pending[k], d.firstSeen == t { return (k, d) }
            orderHead += 1
        }
        return nil
    }

    private func oldestKey() -> FragmentKey? { oldestEntry()?.key }

    private func compactOrder() {
        if orderHead > 1024 && orderHead * 2 > order.count {
            order.removeFirst(orderHead)
            orderHead = 0
        }
    }

    private func drop(_ key: FragmentKey) {
        guard let d = pending.removeValue(forKey: key) else { return }
        bytesHeld -= Self.maximumDatagram
        recycle(d)
    }

    private func recycle(_ d: Datagram) {
        if spare.count < 64 { spare.append(d) }
    }

    /// Drops datagrams older than the timeout; returns how many.
    @discardableResult
    public func expire(now: UInt64) -> Int {
        var n = 0
        while let (k, d) = oldestEntry(), now > d.firstSeen && now - d.firstSeen > timeoutNanoseconds {
            drop(k)
            orderHead += 1
            stats.datagramsTimedOut &+= 1
            n += 1
        }
        compactOrder()
        return n
    }

    /// Drops everything still pending (end of a run); returns how many datagrams were incomplete. They are not
    /// counted as timed out: the caller reports them as incomplete at the end.
    public func flush() -> Int {
        let n = pending.count
        for k in Array(pending.keys) { drop(k) }
        order.removeAll()
        orderHead = 0
        return n
    }
}
