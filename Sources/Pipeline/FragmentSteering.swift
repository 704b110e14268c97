import Capture
import Decode
import Flows

/// Keeps IP fragments and the rest of their flow in one worker when there are several.
///
/// A fragment's flow is known only once its datagram is reassembled (the inner 5-tuple, or for a fragmented
/// tunnel the whole inner packet, is inside). So the source reassembles too, only to learn the owner: it parks the
/// fragments of each datagram and, when the datagram completes, sends them all to the worker owning the inner
/// flow, which reassembles them again for real. A datagram that is refused, times out or overflows the parking
/// budget goes to the worker of its fragmented layer's addresses, where it is counted the same way. (Suricata's
/// autofp does the same: defragment before choosing the flow's thread.)
final class FragmentSteering {
    private struct Held {
        var frames: [ParkedFrame]
        var firstSeen: UInt64
        var fallbackWorker: Int
    }

    private let reassembler: FragmentReassembler
    private var held: [FragmentKey: Held] = [:]
    /// Parked datagrams in arrival order, so eviction looks at the front instead of scanning `held`. An entry is
    /// stale when its key is gone or parked again as a newer datagram (another `firstSeen`); stale ones are skipped.
    private var order: [(key: FragmentKey, firstSeen: UInt64)] = []
    private var orderHead = 0
    private var parked = 0
    private let maxParked: Int
    private let timeout: UInt64
    private var scratch = DecodedPacket()

    init(configuration c: PipelineConfiguration, maxParked: Int) {
        reassembler = FragmentReassembler(memoryBudget: c.reassemblyMemoryBytes,
                                          timeoutNanoseconds: c.reassemblyTimeoutNanoseconds)
        timeout = c.reassemblyTimeoutNanoseconds
        self.maxParked = max(1, maxParked)
    }

    /// What to do with a fragment frame.
    enum Decision {
        /// Parked: nothing to send now.
        case parked
        /// Send these frames (oldest first) to `worker`.
        case release([ParkedFrame], worker: Int)
    }

    /// Takes a fragment (already decoded into `packet`, `info`), parked as `frame`.
    func add(_ frame: ParkedFrame, info: FragmentInfo, packet: DecodedPacket, bytes: UnsafeRawBufferPointer,
             fallbackWorker: Int, workers: Int) -> Decision
    {
        let key = FragmentKey(info, in: packet)  // the reassembler's identity
        var entry: Held
        if let existing = held.removeValue(forKey: key) {
            entry = existing
        } else {
            entry = Held(frames: [], firstSeen: frame.timestampNanoseconds, fallbackWorker: fallbackWorker)
            order.append((key, entry.firstSeen))
        }
        entry.frames.append(frame)
        parked += 1
        switch reassembler.add(info, bytes: bytes, packet: packet, now: frame.timestampNanoseconds) {
        case .incomplete:
            held[key] = entry
            return .parked
        case .refused(_, let datagramPending):
            if datagramPending {
                // Only this fragment was refused: the rest of the datagram stays parked, this one goes on alone
                // (its worker refuses it the same way).
                entry.frames.removeLast()
                parked -= 1
                held[key] = entry
                return .release([frame], worker: entry.fallbackWorker)
            }
            parked -= entry.frames.count
            return .release(entry.frames, worker: entry.fallbackWorker)
        case .complete(let datagram, let proto):
            parked -= entry.frames.count
            scratch = packet
            var worker = entry.fallbackWorker
            // An inner fragment (fragmented IP inside a reassembled tunnel) stays with the outer datagram's owner.
            if case .complete = PacketDecoder.resume(datagram: datagram, ipProtocol: proto, into: &scratch) {
                var sourceIsA = false
                worker = FlowKey(scratch, sourceIsA: &sourceIsA).shard(of: workers)
            }
            return .release(entry.frames, worker: worker)
        }
    }

    /// The oldest parked datagram still held (stale front entries are dropped for good).
    private func oldest() -> (key: FragmentKey, held: Held)? {
        while orderHead < order.count {
            let (k, t) = order[orderHead]
            if let h = held[k], h.firstSeen == t { return (k, h) }
            orderHead += 1
        }
        return nil
    }

    private func take(_ key: FragmentKey, _ h: Held) -> (frames: [ParkedFrame], worker: Int) {
        held[key] = nil
        parked -= h.frames.count
        orderHead += 1
        if orderHead > 1024 && orderHead * 2 > order.count {
            order.removeFirst(orderHead)
            orderHead = 0
        }
        return (h.frames, h.fallbackWorker)
    }

    /// Gives up on the oldest parked datagram (the pool ran dry); nil when nothing is parked.
    func evictOldest() -> (frames: [ParkedFrame], worker: Int)? {
        guard let (k, h) = oldest() else { return nil }
        return take(k, h)
    }

    /// Datagrams to give up on: older than the timeout at `now`, or the oldest while too many frames are parked.
    /// (`now` nil: everything, oldest first, at the end of a run.)
    func evict(now: UInt64?) -> [(frames: [ParkedFrame], worker: Int)] {
        var out: [(frames: [ParkedFrame], worker: Int)] = []
        while let (k, h) = oldest() {
            if let now, parked <= maxParked, !(now > h.firstSeen && now - h.firstSeen > timeout) { break }
            out.append(take(k, h))
        }
        if now == nil {
            order.removeAll()
            orderHead = 0
        }
        return out
    }
}
