/// One direction of a TCP connection put back in order: segments arrive in any order, retransmitted and
/// overlapping; bytes come out once, in sequence order. Out-of-order data is buffered within `maxBuffered` bytes
/// (the caller also charges a global budget); when a hole cannot be waited for any longer, the gap is skipped and
/// reported so the parser can resynchronize. Overlaps: the first copy of a byte wins (later copies of bytes already
/// delivered are ignored). Sequence numbers wrap (RFC 1982 arithmetic on 32 bits).
public struct StreamReassembler: Sendable {
    private struct Segment: Sendable {
        var seq: UInt32
        var data: [UInt8]
    }

    /// The next sequence number to deliver.
    public private(set) var next: UInt32 = 0
    public private(set) var started = false
    private var pending: [Segment] = []
    /// Bytes held out of order.
    public private(set) var buffered = 0
    public let maxBuffered: Int
    public private(set) var gapBytes: UInt64 = 0
    public private(set) var delivered: UInt64 = 0

    public init(maxBuffered: Int = 256 * 1024) { self.maxBuffered = maxBuffered }

    /// What happened to the stream as a segment was added.
    public enum Event {
        case data(UnsafeRawBufferPointer)
        /// `count` bytes were never seen and are skipped.
        case gap(Int)
    }

    /// Adds a segment. `syn`: the segment carries SYN (its data, TCP Fast Open, starts at seq + 1).
    /// `deliver` receives the in-order bytes and gaps as they become available.
    public mutating func add(seq rawSeq: UInt32, syn: Bool, payload: UnsafeRawBufferPointer,
                             deliver: (Event) -> Void)
    {
        let seq = syn ? rawSeq &+ 1 : rawSeq
        if !started {
            // From the SYN when seen; otherwise (mid-stream pickup) from the first segment with data.
            guard syn || !payload.isEmpty else { return }
            started = true
            next = seq
        }
        guard !payload.isEmpty else { return }
        let offset = Int(Int32(bitPattern: seq &- next))
        if offset + payload.count <= 0 {
            return  // entirely old: a retransmission of delivered bytes
        }
        if offset <= 0 {
            let fresh = UnsafeRawBufferPointer(rebasing: payload[(-offset)...])
            next = next &+ UInt32(fresh.count)
            delivered &+= UInt64(fresh.count)
            deliver(.data(fresh))
            drain(deliver)
            return
        }
        // A hole before this segment: hold it, within budget.
        if buffered + payload.count > maxBuffered {
            skipGap(deliver)
            add(seq: seq, syn: false, payload: payload, deliver: deliver)
            return
        }
        pending.append(Segment(seq: seq, data: Array(payload)))
        buffered += payload.count
    }

    /// Delivers buffered segments that now continue the stream.
    private mutating func drain(_ deliver: (Event) -> Void) {
        while true {
            // The earliest buffered segment that starts at or before `next` (it continues the stream).
            var best = -1
            var bestOffset = 1
            for (i, s) in pending.enumerated() {
                let o = Int(Int32(bitPattern: s.seq &- next))
                if o <= 0 && (best == -1 || o < bestOffset) { best = i; bestOffset = o }
            }
            guard best >= 0 else { return }
            let s = pending.remove(at: best)
            buffered -= s.data.count
            let skip = -Int(Int32(bitPattern: s.seq &- next))
            if skip < s.data.count {
                s.data.withUnsafeBytes { raw in
                    let fresh = UnsafeRawBufferPointer(rebasing: raw[skip...])
                    next = next &+ UInt32(fresh.count)
                    delivered &+= UInt64(fresh.count)
                    deliver(.data(fresh))
                }
            }  // else: entirely old, already delivered from an earlier copy
        }
    }

    /// Gives up on the hole before the earliest buffered segment.
    private mutating func skipGap(_ deliver: (Event) -> Void) {
        guard let first = pending.min(by: { Int32(bitPattern: $0.seq &- next) < Int32(bitPattern: $1.seq &- next) })
        else { return }
        let hole = Int(Int32(bitPattern: first.seq &- next))
        guard hole > 0 else { return drain(deliver) }
        gapBytes &+= UInt64(hole)
        next = first.seq
        deliver(.gap(hole))
        drain(deliver)
    }

    /// The stream ends (FIN, RST, flow end): the holes are skipped so what was buffered is delivered.
    public mutating func finish(_ deliver: (Event) -> Void) {
        while !pending.isEmpty { skipGap(deliver) }
    }
}
