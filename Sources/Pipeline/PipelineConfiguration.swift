import Extract
import Flows

/// How a pipeline is sized and tuned. Defaults suit a 2-core machine replaying files.
public struct PipelineConfiguration: Sendable {
    /// Decode workers; flows are sharded across them by a symmetric flow hash.
    public var workers = 1
    /// Slots in each source-to-worker ring (a power of two).
    public var ringSize = 4096
    /// Frames moved per ring operation.
    public var batchSize = 64
    /// Frame slots in the pool (regular 2 KiB frames); bounds the frames in flight.
    public var frameCount = 16384
    /// Regular frame slot size in bytes; larger frames use the few jumbo slots.
    public var frameSize = 2048
    /// Flows each worker tracks at most (least recently used evicted beyond).
    public var maxFlowsPerWorker = 262_144
    /// Devices whose flow totals the sink keeps (least recently seen evicted beyond, counted). About 100 bytes
    /// each: the default holds ~26 MB at most.
    public var maxDevices = 262_144
    /// A flow idle this long (capture time) ends.
    public var flowIdleTimeoutNanoseconds: UInt64 = 120_000_000_000
    /// Memory each worker may hold for IP reassembly, and how long an incomplete datagram waits.
    public var reassemblyMemoryBytes = 32 << 20
    /// Out-of-order TCP bytes each worker may hold for the application parsers (all connections together); past
    /// it, the connection that needs more gives up its holes (gaps reported to its parser, counted).
    public var tcpReassemblyMemcapBytes = 64 << 20
    public var reassemblyTimeoutNanoseconds: UInt64 = 30_000_000_000
    /// Prefixes naming the device side of flows; empty: the client of each flow is its device.
    public var subscribers = SubscriberPrefixes()
    /// CPUs to pin source, workers and sink to, in that order (nil: not pinned).
    public var cpus: [Int]? = nil
    /// When a ring is full: files wait (lossless); live capture drops and counts.
    public var onFullRing: FullRingPolicy = .wait
    /// TLS secrets (`--tls-keylog`, `POST /v1/tls-keys`): when set, the workers read HTTP inside TLS connections
    /// whose secrets arrive here. nil: TLS connections give their server names only, at no cost.
    public var tlsKeys: TLSKeyStore? = nil
    /// How long a TLS connection's records wait for its secrets before it is read for its server name only.
    public var tlsKeyWaitNanoseconds: UInt64 = 5_000_000_000
    /// Record bytes one TLS connection may hold while it waits for its secrets (charged to the TCP memcap too).
    public var tlsMaxHeldBytes = 8 << 20

    public enum FullRingPolicy: Sendable { case wait, drop }

    public init() {}

    /// Checks the values, with a message that says what is wrong.
    public func validate() throws(ConfigurationError) {
        func fail(_ m: String) -> ConfigurationError { ConfigurationError(message: m) }
        guard (1...64).contains(workers) else { throw fail("--workers must be 1...64, got \(workers)") }
        guard ringSize >= 2, ringSize <= 1 << 24, ringSize & (ringSize - 1) == 0 else {
            throw fail("--ring-size must be a power of two in 2...16777216, got \(ringSize)")
        }
        guard (1...ringSize).contains(batchSize) else {
            throw fail("--batch must be 1...ring size (\(ringSize)), got \(batchSize)")
        }
        guard frameCount >= batchSize * 2 else { throw fail("frame count \(frameCount) must be at least twice the batch size") }
        guard maxFlowsPerWorker >= 1 else { throw fail("--max-flows must be at least 1") }
        guard (1...(1 << 26)).contains(maxDevices) else { throw fail("--max-flow-devices must be 1...67108864, got \(maxDevices)") }
        if let cpus, cpus.contains(where: { $0 < 0 }) { throw fail("--cpus takes CPU numbers >= 0") }
    }
}

/// A configuration value that cannot work.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
