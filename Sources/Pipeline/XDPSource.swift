import Capture
import Decode
import Rings
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
    private var dumper: PcapWriter?
    /// Stop after this many frames in all (shared by every queue; nil: no limit).
    private let packetLimit: UInt64?
    private let shared: LiveShared

    init(socket: XSKQueue, workers: [DecodeWorker], pool: FramePool, inline: Bool, configuration c: PipelineConfiguration,
         dumper: PcapWriter?, packetLimit: UInt64?, shared: LiveShared)
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
        // The fill ring is full before the program is attached: no frame of interest finds it empty at the start.
        // (The capture thread takes the ring over when it starts; thread creation orders these writes before.)
        var shortages: UInt64 = 0
        refill(&shortages)
    }

    /// The capture thread's body; returns after `shared.stop` is set (or the packet limit is reached). On a stop,
    /// the queue's XSKMAP entry is removed first (frames of interest then go to the kernel stack, counted
    /// `no_socket`) and what is already in the rx ring is processed: nothing the program steered is left behind.
    func run() {
        var rxPackets: UInt64 = 0
        var rxBytes: UInt64 = 0
        var emptyPolls: UInt64 = 0
        var fillShortages: UInt64 = 0
        var batches: UInt64 = 0
        var draining = false
        var emptyWhileDraining = 0
        var drainRounds = 0
        refill(&fillShortages)
        while true {
            if !draining, shared.stop.load(ordering: .relaxed) {
                draining = true
                socket.unregister()
            }
            var index: UInt32 = 0
            var n = socket.peekReceived(maxCount: batchSize, index: &index)
            if let packetLimit, n > 0 {
                // --count: take no more than the limit (all queues together; a race may pass it by a batch).
                let taken = shared.received.load(ordering: .relaxed)
                n = taken >= packetLimit ? 0 : UInt32(min(UInt64(n), packetLimit - taken))
                if n == 0 { shared.stop.store(true, ordering: .relaxed); break }
            }
            if n == 0 {
                dispatcher.reclaim()
                refill(&fillShortages)
                if draining {
                    // Redirects already in flight when the entry was removed may still land: the ring must stay
                    // empty across a short wait before the queue is done. Bounded in rounds.
                    emptyWhileDraining += 1
                    drainRounds += 1
                    if emptyWhileDraining >= 2 || drainRounds > 100 { break }
                    _ = socket.waitForFrames(milliseconds: 5)
                    continue
                }
                emptyPolls &+= 1
                counters.emptyPolls.store(emptyPolls, ordering: .relaxed)
                counters.fillShortages.store(fillShortages, ordering: .relaxed)
                if emptyPolls & 63 == 0 { releaseExpiredFragments() }
                if busyPoll {
                    socket.wake()
                } else {
                    // Frames out in the pipeline must come back soon to refill: wake often while any are out.
                    _ = socket.waitForFrames(milliseconds: !dispatcher.inline && pool.framesOut > 0 ? 1 : 50)
                }
                continue
            }
            emptyWhileDraining = 0
            let ts = realtimeNanoseconds()
            for i in 0..<n {
                let (address, length) = socket.descriptor(at: index &+ i)
                rxBytes &+= UInt64(length)
                let frame = pool.adopt(address: address, length: length, timestampNanoseconds: ts, linkType: .ethernet)
                if let dumper { writeFrame(dumper, pool.bytes(of: frame), ts) }
                dispatcher.dispatch(frame)
            }
            socket.releaseReceived(n)
            rxPackets &+= UInt64(n)
            dispatcher.flush()
            refill(&fillShortages)
            batches &+= 1
            if batches & 1023 == 0 { releaseExpiredFragments() }
            counters.rxPackets.store(rxPackets, ordering: .relaxed)
            counters.rxBytes.store(rxBytes, ordering: .relaxed)
            counters.ringFullDrops.store(dispatcher.ringFullDrops, ordering: .relaxed)
            counters.fillShortages.store(fillShortages, ordering: .relaxed)
            if dumper != nil { counters.framesWritten.store(written, ordering: .relaxed) }
            if let packetLimit {
                let total = shared.received.add(UInt64(n), ordering: .relaxed).newValue
                if total >= packetLimit { shared.stop.store(true, ordering: .relaxed); break }
            }
            if draining {
                drainRounds += 1
                // Bounded: with the entry removed nothing new arrives, but never loop forever.
                if drainRounds > socket.configuration.rxRingSize / Int(max(batchSize, 1)) + 100 { break }
            }
        }
        socket.unregister()
        // Fragments still parked for their datagram go to their worker, which counts them as it would in a file.
        dispatcher.releaseAllParked()
        dispatcher.flush()
        counters.fillShortages.store(fillShortages, ordering: .relaxed)
        counters.ringFullDrops.store(dispatcher.ringFullDrops, ordering: .relaxed)
        try? dumper?.close()
    }

    private var written: UInt64 = 0

    /// `--write-pcap`: a write error (disk full) stops the file, is reported once, and capture goes on.
    private func writeFrame(_ w: PcapWriter, _ bytes: UnsafeRawBufferPointer, _ ts: UInt64) {
        do {
            try w.write(packet: bytes, timestampNanoseconds: ts)
            written &+= 1
        } catch {
            writeError = "\(error)"
            try? w.close()
            dumper = nil
        }
    }

    /// Why --write-pcap stopped, if it did.
    private(set) var writeError: String?

    private func releaseExpiredFragments() {
        dispatcher.releaseExpiredParked(now: realtimeNanoseconds())
        dispatcher.flush()
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
