import Capture
import Decode
import Flows
import Rings
import Synchronization

/// The source stage for capture files: reads packets with libpcap, writes each once into a pool slot (as the
/// kernel writes into UMEM) and sends the frame token to the worker that owns its flow. It alone takes and
/// releases pool slots; frames come back from the workers on their return rings.
final class FileSource: @unchecked Sendable {
    // @unchecked Sendable: used only by the source thread after start; counters are read after join.
    let readers: [CaptureFileReader]
    let pool: FramePool
    let workers: [DecodeWorker]
    let batchSize: Int
    let dropWhenFull: Bool
    let packetsRead = Atomic<UInt64>(0)
    var framesTooLarge: UInt64 = 0
    var ringFullEvents: UInt64 = 0
    var ringFullDrops: UInt64 = 0
    var poolWaits: UInt64 = 0
    var readErrors: [String] = []
    private var shardPacket = DecodedPacket()
    private let steering: FragmentSteering?

    init(readers: [CaptureFileReader], pool: FramePool, workers: [DecodeWorker], configuration c: PipelineConfiguration) {
        self.readers = readers
        self.pool = pool
        self.workers = workers
        self.batchSize = c.batchSize
        self.dropWhenFull = c.onFullRing == .drop
        // Parked fragments hold pool slots: keep a quarter of the pool for them at most.
        steering = workers.count > 1 ? FragmentSteering(configuration: c, maxParked: pool.frameCount / 4) : nil
    }

    func run() {
        var count: UInt64 = 0
        var sinceFlush = 0
        for reader in readers {
            readLoop: while true {
                switch reader.next() {
                case .end:
                    break readLoop
                case .error(let message):
                    readErrors.append("\(reader.path): \(message) (after \(count) packets)")
                    break readLoop
                case .packet(let bytes, let originalLength, let ts):
                    count &+= 1
                    guard bytes.count <= pool.maximumFrameLength else {
                        framesTooLarge &+= 1
                        continue
                    }
                    let frame = takeFrame(bytes: bytes, originalLength: originalLength, ts: ts, linkType: reader.linkType)
                    if steering == nil {
                        send(frame, to: workers[0].input)
                    } else {
                        dispatch(frame)
                    }
                    sinceFlush += 1
                    if sinceFlush >= batchSize {
                        flush()
                        sinceFlush = 0
                        packetsRead.store(count, ordering: .relaxed)
                    }
                }
            }
        }
        if let steering {
            for (frames, w) in steering.evict(now: nil) { release(frames, to: w) }
        }
        flush()
        packetsRead.store(count, ordering: .relaxed)
    }

    /// Several workers: sends the frame to the worker owning its flow; IP fragments wait for their datagram.
    private func dispatch(_ frame: consuming Frame) {
        guard let steering else { preconditionFailure("dispatch needs several workers") }
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
    private func flush() {
        for w in workers { w.input.publish() }
        reclaim()
    }

    /// Moves frames the workers are done with back into the pool.
    func reclaim() {
        for w in workers {
            _ = w.returns.dequeueBatch(maxCount: w.returns.capacity) { frame in self.pool.release(frame) }
        }
    }

    private func takeFrame(bytes: UnsafeRawBufferPointer, originalLength: Int, ts: UInt64, linkType: LinkType) -> Frame {
        var backoff = Backoff()
        while true {
            if let f = pool.take(length: bytes.count, originalLength: originalLength, timestampNanoseconds: ts,
                                 linkType: linkType, fill: { $0.copyMemory(from: bytes) })
            {
                return f
            }
            poolWaits &+= 1
            flush()
            // Parked fragments hold slots: when the pool is dry, give up on the oldest parked datagram so the
            // slots come back (its worker counts it incomplete), rather than wait for a slot that never frees.
            if !pool.canTake(length: bytes.count), let steering, let (frames, w) = steering.evictOldest() {
                release(frames, to: w)
            }
            backoff.wait()
        }
    }
}
