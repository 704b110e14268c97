import Capture
import Decode
import Synchronization
import XDPCapture
#if canImport(Glibc)
import Glibc
#endif

/// Counters of one queue that other threads read while capture runs (relaxed: statistics only).
public final class QueueCounters: Sendable {
    public let rxPackets = Atomic<UInt64>(0)
    public let rxBytes = Atomic<UInt64>(0)
    /// Polls of the rx ring that found nothing (the thread then slept in poll() or busy-polled).
    public let emptyPolls = Atomic<UInt64>(0)
    /// Times the fill ring ran low and no free frame was there to refill it (every frame was in the pipeline).
    public let fillShortages = Atomic<UInt64>(0)
    /// Frames dropped because a worker's ring was full.
    public let ringFullDrops = Atomic<UInt64>(0)
    /// Frames written to --write-pcap.
    public let framesWritten = Atomic<UInt64>(0)
    init() {}
}

/// The source stage for one AF_XDP queue: takes the frames the kernel wrote into the UMEM off the rx ring, turns
/// each into a `Frame` token (no copy) and dispatches it; frames the workers are done with come back through the
/// pool, and this thread alone refills the fill ring with them.
final class XDPSource: @unchecked Sendable {
    // @unchecked Sendable: stored vars are touched only by the queue's capture thread after start.
    let socket: XSKQueue
    let pool: FramePool
    let dispatcher: FrameDispatcher
    let counters = QueueCounters()
    private let batchSize: UInt32
    private let fillRingSize: UInt32
    private let busyPoll: Bool
    private let dumper: CaptureFileDumper?
    /// Stop after this many frames in all (shared by every queue; nil: no limit).
    private let packetLimit: UInt64?
    private let shared: LiveShared

    init(socket: XSKQueue, workers: [DecodeWorker], pool: FramePool, inline: Bool, configuration c: PipelineConfiguration,
         dumper: CaptureFileDumper?, packetLimit: UInt64?, shared: LiveShared)
    {
        self.socket = socket
        self.pool = pool
        dispatcher = FrameDispatcher(pool: pool, workers: workers, inline: inline, configuration: c)
        batchSize = UInt32(c.batchSize)
        fillRingSize = UInt32(socket.configuration.fillRingSize)
        busyPoll = socket.configuration.busyPollMicroseconds != nil
        self.dumper = dumper
        self.packetLimit = packetLimit
        self.shared = shared
        for slot in (0..<UInt32(pool.frameCount)).reversed() { pool.returnSlot(slot) }
    }

    /// The capture thread's body; returns after `shared.stop` is set (or the packet limit is reached) and what
    /// was already in the rx ring has been processed.
    func run() {
        var rxPackets: UInt64 = 0
        var rxBytes: UInt64 = 0
        var emptyPolls: UInt64 = 0
        var fillShortages: UInt64 = 0
        var draining = 0
        refill(&fillShortages)
        while true {
            if draining == 0, shared.stop.load(ordering: .relaxed) { draining = 1 }
            var index: UInt32 = 0
            let n = socket.peekReceived(maxCount: batchSize, index: &index)
            if n == 0 {
                dispatcher.reclaim()
                refill(&fillShortages)
                if draining > 0 { break }  // the rx ring is empty after the stop: done
                emptyPolls &+= 1
                counters.emptyPolls.store(emptyPolls, ordering: .relaxed)
                if emptyPolls & 63 == 0 {
                    dispatcher.releaseExpiredParked(now: realtimeNanoseconds())
                    dispatcher.flush()
                }
                if busyPoll {
                    socket.wake()
                } else {
                    // Frames out in the pipeline must come back soon to refill: wake often while any are out.
                    let inFill = Int(fillRingSize - socket.fillRingFree(fillRingSize))
                    let outstanding = !dispatcher.inline && pool.freeCount + inFill < pool.frameCount
                    _ = socket.waitForFrames(milliseconds: outstanding ? 1 : 50)
                }
                continue
            }
            let ts = realtimeNanoseconds()
            for i in 0..<n {
                let (address, length) = socket.descriptor(at: index &+ i)
                rxBytes &+= UInt64(length)
                let frame = pool.adopt(address: address, length: length, timestampNanoseconds: ts, linkType: .ethernet)
                if let dumper {
                    dumper.write(pool.bytes(of: frame), timestampNanoseconds: ts)
                }
                dispatcher.dispatch(frame)
            }
            socket.releaseReceived(n)
            rxPackets &+= UInt64(n)
            dispatcher.flush()
            refill(&fillShortages)
            counters.rxPackets.store(rxPackets, ordering: .relaxed)
            counters.rxBytes.store(rxBytes, ordering: .relaxed)
            counters.ringFullDrops.store(dispatcher.ringFullDrops, ordering: .relaxed)
            if dumper != nil { counters.framesWritten.store(rxPackets, ordering: .relaxed) }
            if let packetLimit {
                let total = shared.received.add(UInt64(n), ordering: .relaxed).newValue
                if total >= packetLimit { shared.stop.store(true, ordering: .relaxed) }
            }
            if draining > 0 {
                draining += 1
                // Bounded: the rx ring holds at most its size; a sender that never stops cannot keep us here.
                if draining > socket.configuration.rxRingSize / Int(max(batchSize, 1)) + 2 { break }
            }
        }
        // Fragments still parked for their datagram go to their worker, which counts them as it would in a file.
        dispatcher.releaseAllParked()
        dispatcher.flush()
        counters.fillShortages.store(fillShortages, ordering: .relaxed)
        counters.ringFullDrops.store(dispatcher.ringFullDrops, ordering: .relaxed)
        dumper?.close()
    }

    /// Moves free frames into the fill ring, as many as both have.
    @inline(__always)
    private func refill(_ shortages: inout UInt64) {
        let free = UInt32(min(pool.freeCount, Int(fillRingSize)))
        let room = socket.fillRingFree(fillRingSize)
        if free == 0 {
            // Count a shortage only when the kernel is about to run out of frames to receive into.
            if fillRingSize - room < batchSize { shortages &+= 1 }
            return
        }
        let n = min(free, room)
        guard n > 0, let start = socket.reserveFill(n) else { return }
        for i in 0..<n {
            socket.setFill(at: start &+ i, address: pool.umemAddress(of: pool.takeSlot()!))
        }
        socket.submitFill(n)
        if socket.fillNeedsWakeup { socket.wake() }
    }

    /// After every thread is joined: frames the workers returned last come back to the pool.
    func reclaimAfterJoin() { dispatcher.reclaim() }
}

/// State every queue of one live run shares.
final class LiveShared: Sendable {
    let stop = Atomic<Bool>(false)
    let received = Atomic<UInt64>(0)
}

@inline(__always)
func realtimeNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}
