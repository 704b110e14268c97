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

    init(readers: [CaptureFileReader], pool: FramePool, workers: [DecodeWorker], configuration c: PipelineConfiguration) {
        self.readers = readers
        self.pool = pool
        self.workers = workers
        self.batchSize = c.batchSize
        self.dropWhenFull = c.onFullRing == .drop
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
                    let w = workers.count == 1 ? 0 : shard(frame)
                    send(frame, to: workers[w].input)
                    sinceFlush += 1
                    if sinceFlush >= batchSize {
                        flush()
                        sinceFlush = 0
                        packetsRead.store(count, ordering: .relaxed)
                    }
                }
            }
        }
        flush()
        packetsRead.store(count, ordering: .relaxed)
    }

    /// Enqueues (unpublished) on `ring`; when it is full, publishes and waits (files) or drops and counts (live).
    private func send(_ frame: consuming Frame, to ring: SPSCRing<Frame>) {
        var pending: Frame? = .some(frame)
        var backoff = Backoff()
        while let f = pending.take() {
            guard let back = ring.enqueueUnpublished(f) else { return }
            ring.publish()
            ringFullEvents &+= 1
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
            backoff.wait()
        }
    }

    /// The worker that owns this frame's flow: symmetric hash of the innermost flow key (for an IP fragment, of
    /// the fragmented layer's addresses, so all fragments of a datagram meet in one worker).
    private func shard(_ frame: borrowing Frame) -> Int {
        _ = PacketDecoder.decode(pool.bytes(of: frame), linkType: frame.linkType, into: &shardPacket)
        var sourceIsA = false
        let key = FlowKey(shardPacket, sourceIsA: &sourceIsA)
        return Int(key.symmetricHash % UInt64(workers.count))
    }
}
