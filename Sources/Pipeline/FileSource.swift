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
    let batchSize: Int
    let packetsRead = Atomic<UInt64>(0)
    var framesTooLarge: UInt64 = 0
    var poolWaits: UInt64 = 0
    var readErrors: [String] = []
    private let dispatcher: FrameDispatcher
    var ringFullEvents: UInt64 { dispatcher.ringFullEvents }
    var ringFullDrops: UInt64 { dispatcher.ringFullDrops }

    init(readers: [CaptureFileReader], pool: FramePool, workers: [DecodeWorker], configuration c: PipelineConfiguration) {
        self.readers = readers
        self.pool = pool
        self.batchSize = c.batchSize
        dispatcher = FrameDispatcher(pool: pool, workers: workers, inline: false, configuration: c)
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
                    dispatcher.dispatch(frame)
                    sinceFlush += 1
                    if sinceFlush >= batchSize {
                        flush()
                        sinceFlush = 0
                        packetsRead.store(count, ordering: .relaxed)
                    }
                }
            }
        }
        dispatcher.releaseAllParked()
        flush()
        packetsRead.store(count, ordering: .relaxed)
    }

    /// Moves frames the workers are done with back into the pool.
    func reclaim() { dispatcher.reclaim() }

    private func flush() { dispatcher.flush() }

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
            if !pool.canTake(length: bytes.count) { _ = dispatcher.releaseOldestParked() }
            backoff.wait()
        }
    }
}
