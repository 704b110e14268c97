/// One direction of a TCP connection put back in order: segments arrive in any order, retransmitted and
/// overlapping; bytes come out once, in sequence order. Out-of-order data is held within `maxBuffered` bytes
/// (the caller also charges a global budget); when a hole cannot be waited for any longer, the gap is skipped and
/// reported so the parser can resynchronize. Sequence numbers wrap (RFC 1982 arithmetic on 32 bits).
///
/// Overlaps: the first copy of a byte wins, whichever order copies arrive in. A later copy whose bytes differ from
/// a copy still held is counted in `conflicts` (the classic evasion: two different payloads for the same sequence
/// range, read one way by the monitor and the other by the host). Bytes already delivered are not kept, so a
/// retransmission of delivered data is dropped without comparison.
///
/// Held data is a list sorted by sequence with no overlap (each new segment is trimmed against it on arrival), so
/// delivering it is a walk from the front. Each held segment is charged `segmentOverhead` bytes on top of its
/// data, so a flood of tiny out-of-order segments is bounded by memory, not by byte count.
public struct StreamReassembler: Sendable {
    private struct Segment: Sendable {
        var seq: UInt32
        var data: [UInt8]
        /// Bytes the sender sent right after `data` that the capture did not keep (its snap length).
        var cut: UInt32 = 0
    }

    /// Bytes charged per held segment for its bookkeeping (array header, allocation, list slot).
    public static let segmentOverhead = 64

    /// The next sequence number to deliver.
    public private(set) var next: UInt32 = 0
    public private(set) var started = false
    /// Held out of order: sorted by sequence (relative to `next`), not overlapping, all after `next`.
    private var pending: [Segment] = []
    /// Memory held out of order: data bytes plus `segmentOverhead` per held segment.
    public private(set) var buffered = 0
    public let maxBuffered: Int
    public private(set) var gapBytes: UInt64 = 0
    /// Bytes sent but not captured (cut by the snap length), reported as `cut`.
    public private(set) var cutBytes: UInt64 = 0
    public private(set) var delivered: UInt64 = 0
    /// Segments that overlapped held bytes with different content (the held, first copy was kept).
    public private(set) var conflicts: UInt64 = 0

    public init(maxBuffered: Int = 256 * 1024) { self.maxBuffered = maxBuffered }

    /// What happened to the stream as a segment was added.
    public enum Event {
        case data(UnsafeRawBufferPointer)
        /// `count` bytes were never seen and are skipped.
        case gap(Int)
        /// `count` bytes were sent (the segment's IP length says so) but the capture kept fewer of them (its snap
        /// length): skipped like a gap, but the parser knows that what came before them was whole up to here.
        case cut(Int)
    }

    @inline(__always)
    private func relative(_ seq: UInt32) -> Int { Int(Int32(bitPattern: seq &- next)) }

    /// Starts the stream at `seq` (the SYN's sequence number + 1) before any segment was added: data that arrives
    /// out of order before the first byte is then held, not taken for a mid-stream start.
    public mutating func start(at seq: UInt32) {
        guard !started else { return }
        started = true
        next = seq
    }

    /// Adds a segment. `syn`: the segment carries SYN (its data, TCP Fast Open, starts at seq + 1). `cut`: the
    /// segment carried that many more bytes after `payload` that the capture did not keep (snap length).
    /// `deliver` receives the in-order bytes, gaps and cuts as they become available.
    public mutating func add(seq rawSeq: UInt32, syn: Bool, payload: UnsafeRawBufferPointer, cut: Int = 0,
                             deliver: (Event) -> Void)
    {
        let seq = syn ? rawSeq &+ 1 : rawSeq
        if !started {
            // From the SYN when seen; otherwise (mid-stream pickup) from the first segment with data.
            guard syn || !payload.isEmpty else { return }
            started = true
            next = seq
        }
        guard !payload.isEmpty else { return }  // (a cut at the end of the TCP header: its bytes become a gap)
        let offset = relative(seq)
        if offset + payload.count <= 0 {
            return  // entirely old: a retransmission of delivered bytes
        }
        if offset <= 0 && pending.isEmpty {
            // The common case: in order, nothing held. Delivered from the packet, no copy.
            let fresh = UnsafeRawBufferPointer(rebasing: payload[(-offset)...])
            next = next &+ UInt32(fresh.count)
            delivered &+= UInt64(fresh.count)
            deliver(.data(fresh))
            if cut > 0 { skipCut(cut, deliver) }
            return
        }
        if offset > 0 {
            // A hole before this segment: hold what of it is new, within budget (each held piece costs its bytes
            // and its bookkeeping); past the budget the oldest hole is given up.
            while relative(seq) > 0 {
                let cost = uncovered(seq: seq, payload).reduce(0) { $0 + $1.to - $1.from + Self.segmentOverhead }
                if buffered + cost <= maxBuffered { break }
                if pending.isEmpty {
                    // Nothing left to give up and it still does not fit (a segment larger than the budget): the
                    // hole before it is skipped and it is delivered at once.
                    let hole = relative(seq)
                    gapBytes &+= UInt64(hole)
                    next = seq
                    deliver(.gap(hole))
                    break
                }
                skipGap(deliver)
            }
            if relative(seq) <= 0 && pending.isEmpty {
                return add(seq: seq, syn: false, payload: payload, cut: cut, deliver: deliver)
            }
        }
        hold(seq: seq, payload, cut: cut)
        drain(deliver)
    }

    /// The `count` bytes after the ones just delivered were cut by the capture: skipped, reported.
    private mutating func skipCut(_ count: Int, _ deliver: (Event) -> Void) {
        next = next &+ UInt32(truncatingIfNeeded: count)
        cutBytes &+= UInt64(count)
        deliver(.cut(count))
    }

    /// The parts of a segment that no held segment covers (relative to `next`), each with the position it takes
    /// in `pending`; and whether the covered parts differ from the held bytes.
    private func uncovered(seq: UInt32, _ payload: UnsafeRawBufferPointer, differs: UnsafeMutablePointer<Bool>? = nil)
        -> [(from: Int, to: Int, at: Int)]
    {
        let base = relative(seq)
        let end = base + payload.count
        var cursor = max(base, 0)
        var pieces: [(from: Int, to: Int, at: Int)] = []
        var i = 0
        while i < pending.count, cursor < end {
            let p = pending[i]
            let pStart = relative(p.seq)
            let pEnd = pStart + p.data.count
            if pEnd <= cursor { i += 1; continue }
            if pStart >= end { break }
            if pStart > cursor { pieces.append((cursor, pStart, i)) }
            if let differs, !differs.pointee {
                // The overlap [max(cursor, pStart), min(end, pEnd)): compared with the held, first copy.
                for k in max(cursor, pStart)..<min(end, pEnd) where payload[k - base] != p.data[k - pStart] {
                    differs.pointee = true
                    break
                }
            }
            cursor = max(cursor, pEnd)
            i += 1
        }
        if cursor < end { pieces.append((cursor, end, i)) }
        return pieces
    }

    /// Holds the parts of a segment that no held segment covers yet (first copy wins); counts a conflict when the
    /// covered parts differ. A cut goes with the piece that ends where the segment does.
    private mutating func hold(seq: UInt32, _ payload: UnsafeRawBufferPointer, cut: Int) {
        var differs = false
        let pieces = uncovered(seq: seq, payload, differs: &differs)
        if differs { conflicts &+= 1 }
        let base = relative(seq)
        // Inserted back to front so the recorded positions stay valid.
        for piece in pieces.reversed() {
            let bytes = Array(payload[(piece.from - base)..<(piece.to - base)])
            let pieceCut = piece.to == base + payload.count ? UInt32(truncatingIfNeeded: cut) : 0
            pending.insert(Segment(seq: next &+ UInt32(truncatingIfNeeded: piece.from), data: bytes, cut: pieceCut),
                           at: piece.at)
            buffered += bytes.count + Self.segmentOverhead
        }
    }

    /// Delivers held segments that now continue the stream.
    private mutating func drain(_ deliver: (Event) -> Void) {
        var taken = 0
        defer { if taken > 0 { pending.removeFirst(taken) } }
        while taken < pending.count {
            let o = relative(pending[taken].seq)
            guard o <= 0 else { return }
            let count = pending[taken].data.count
            buffered -= count + Self.segmentOverhead
            let skip = -o
            if skip < count {
                pending[taken].data.withUnsafeBytes { raw in
                    let fresh = UnsafeRawBufferPointer(rebasing: raw[skip...])
                    next = next &+ UInt32(fresh.count)
                    delivered &+= UInt64(fresh.count)
                    deliver(.data(fresh))
                }
            }
            let cut = pending[taken].cut
            if cut > 0 {
                // What of the cut lies past what was delivered (a later copy may have covered some of it).
                let past = relative(pending[taken].seq &+ UInt32(truncatingIfNeeded: count) &+ cut)
                if past > 0 { skipCut(past, deliver) }
            }
            taken += 1
        }
    }

    /// Gives up on the hole before the earliest held segment.
    private mutating func skipGap(_ deliver: (Event) -> Void) {
        guard let first = pending.first else { return }
        let hole = relative(first.seq)
        if hole > 0 {
            gapBytes &+= UInt64(hole)
            next = first.seq
            deliver(.gap(hole))
        }
        drain(deliver)
    }

    /// The stream ends (FIN, RST, flow end): the holes are skipped so what was held is delivered.
    public mutating func finish(_ deliver: (Event) -> Void) {
        while !pending.isEmpty { skipGap(deliver) }
    }
}
