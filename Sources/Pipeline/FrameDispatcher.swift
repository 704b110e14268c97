import Capture
import Decode
import Flows
import Rings

/// Moves frames from a source thread to the decode workers and takes them back: one flow's frames always go to
/// the same worker (symmetric flow hash; IP fragments wait until their datagram names the owner), a full ring
/// waits (files) or drops and counts (live), and frames the workers are done with return to the pool. Shared by
/// the file source and the AF_XDP source; used by the source thread only.
///
/// Inline (run to completion): one worker whose `process` runs on the source thread itself, no input ring.
final class FrameDispatcher {
    let pool: FramePool
    let workers: [DecodeWorker]
    let inline: Bool
    /// The worker that runs on the source thread (inline), held directly: no array access per frame.
    private let inlineWorker: DecodeWorker?
    private let dropWhenFull: Bool
    private let steering: FragmentSteering?
    private var shardPacket = DecodedPacket()
    var ringFullEvents: UInt64 = 0
    var ringFullDrops: UInt64 = 0

    init(pool: FramePool, workers: [DecodeWorker], inline: Bool, configuration c: PipelineConfiguration) {
        precondition(!inline || workers.count == 1, "inline runs exactly one worker on the source thread")
        self.pool = pool
        self.workers = workers
        self.inline = inline
        inlineWorker = inline ? workers[0] : nil
        self.dropWhenFull = c.onFullRing == .drop
        // Parked fragments hold pool slots: keep a quarter of the pool for them at most.
        steering = workers.count > 1 ? FragmentSteering(configuration: c, maxParked: pool.frameCount / 4) : nil
    }

    /// Sends a frame to the worker owning its flow (or processes it here, inline).
    @inline(__always)
    func dispatch(_ frame: consuming Frame) {
        if let inlineWorker {
            inlineWorker.process(frame)
        } else if steering == nil {
            send(frame, to: workers[0].input)
        } else {
            shard(frame)
        }
    }

    /// Several workers: the worker owning the frame's flow; IP fragments wait for their datagram.
    private func shard(_ frame: consuming Frame) {
        guard let steering else { preconditionFailure("sharding needs several workers") }
        let bytes = pool.bytes(of: frame)
        let outcome = PacketDecoder.decode(bytes, linkType: frame.linkType, into: &shardPacket)
        var sourceIsA = false
        let hashWorker = FlowKey(shardPacket, sourceIsA: &sourceIsA).shard(of: workers.count)
        guard case .fragment = outcome else { return send(frame, to: workers[hashWorker].input) }
        let info = shardPacket.fragment
        let ts = frame.timestampNanoseconds
        let decision = steering.add(pool.park(frame), info: info, packet: shardPacket, bytes: bytes,
                                    fallbackWorker: hashWorker, workers: workers.count)
        if case .release(let frames, let w) = decision { release(frames, to: w) }
        for (frames, w) in steering.evict(now: ts) { release(frames, to: w) }
    }

    /// Sends parked frames, oldest first, to worker `w`.
    private func release(_ frames: [ParkedFrame], to w: Int) {
        for f in frames { send(pool.unpark(f), to: workers[w].input) }
    }

    /// Enqueues (unpublished) on `ring`; when it is full, publishes and waits (files) or drops and counts (live).
    private func send(_ frame: consuming Frame, to ring: SPSCRing<Frame>) {
        var pending: Frame? = .some(frame)
        var backoff = Backoff()
        var waited = false
        while let f = pending.take() {
            guard let back = ring.enqueueUnpublished(f) else { return }
            ring.publish()
            if !waited { ringFullEvents &+= 1 }  // once per frame that found the ring full
            waited = true
            if dropWhenFull {
                ringFullDrops &+= 1
                pool.release(back)
                return
            }
            pending = consume back
            reclaim()
            backoff.wait()
        }
    }

    /// Publishes pending frames on every ring and takes back returned frames.
    func flush() {
        if inline {
            workers[0].returns.publish()
            workers[0].progress.store(workers[0].counters.packets, ordering: .relaxed)
        } else {
            for w in workers { w.input.publish() }
        }
        reclaim()
    }

    /// Moves frames the workers are done with back into the pool.
    func reclaim() {
        for w in workers {
            _ = w.returns.dequeueBatch(maxCount: w.returns.capacity) { frame in self.pool.release(frame) }
        }
    }

    /// The pool ran dry: gives up on the oldest parked datagram so its slots come back (its worker counts it
    /// incomplete). False when nothing is parked.
    func releaseOldestParked() -> Bool {
        guard let steering, let (frames, w) = steering.evictOldest() else { return false }
        release(frames, to: w)
        return true
    }

    /// Parked datagrams older than the reassembly timeout at `now` go to their worker (live capture calls this
    /// when idle, so fragments do not wait for the next fragment to be given up on).
    func releaseExpiredParked(now: UInt64) {
        guard let steering else { return }
        for (frames, w) in steering.evict(now: now) { release(frames, to: w) }
    }

    /// End of input: every parked fragment goes to its worker.
    func releaseAllParked() {
        guard let steering else { return }
        for (frames, w) in steering.evict(now: nil) { release(frames, to: w) }
    }
}
