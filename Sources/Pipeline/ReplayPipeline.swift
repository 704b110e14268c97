import Capture
import Decode
import Extract
import Flows
import Rings
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What a run counted, for the summary.
public struct PipelineSummary: Sendable {
    public var files: [String] = []
    public var counters = WorkerCounters()
    /// Frames larger than a pool slot (counted, not decoded).
    public var framesTooLarge: UInt64 = 0
    /// Times the source found a worker ring full (files: it waited; live: it dropped).
    public var ringFullEvents: UInt64 = 0
    public var ringFullDrops: UInt64 = 0
    /// Times the source waited for a free frame slot.
    public var poolWaits: UInt64 = 0
    public var flows: UInt64 = 0
    public var flowsTCP: UInt64 = 0
    public var flowsUDP: UInt64 = 0
    public var flowsOther: UInt64 = 0
    public var flowsWithoutDevice: UInt64 = 0
    /// Devices whose totals are kept (at most `maxDevices`), and how many less recently seen ones were evicted.
    public var devices: Int = 0
    public var devicesEvicted: UInt64 = 0
    public var deviceTotals: [IPAddress: DeviceTotals] = [:]
    public var wallNanoseconds: UInt64 = 0
    public var workers = 1
    /// The key store's counters when HTTPS was read (`PipelineConfiguration.tlsKeys`); nil when not.
    public var tlsKeys: TLSKeyStore.Counters?
    /// Frame slots that never came back to the pool (a leak: must be 0).
    public var framesNotReturned = 0
    /// Per-file read errors (the run goes on with the next file).
    public var readErrors: [String] = []
    /// Events the sink received, per kind.
    public var serverNameEvents: UInt64 = 0
    public var webLinkEvents: UInt64 = 0

    /// Capture time spanned by the packets, in seconds.
    public var captureDurationSeconds: Double {
        counters.lastTimestamp >= counters.firstTimestamp && counters.packets > 0
            ? Double(counters.lastTimestamp - counters.firstTimestamp) / 1e9 : 0
    }
    /// Packets per second of wall time.
    public var packetsPerSecond: Double {
        wallNanoseconds > 0 ? Double(counters.packets) * 1e9 / Double(wallNanoseconds) : 0
    }
}

extension PipelineSummary {
    /// Takes the sink's flow and device totals (after the sink thread is joined).
    mutating func add(_ sink: FlowSink) {
        flows = sink.flows
        flowsTCP = sink.flowsTCP
        flowsUDP = sink.flowsUDP
        flowsOther = sink.flowsOther
        flowsWithoutDevice = sink.flowsWithoutDevice
        devices = sink.devices.count
        devicesEvicted = sink.devicesEvicted
        deviceTotals = sink.devices
        serverNameEvents = sink.serverNameEvents
        webLinkEvents = sink.webLinkEvents
    }
}

/// A progress snapshot taken while the pipeline runs.
public struct PipelineProgress: Sendable {
    public var packetsRead: UInt64
    public var packetsDecoded: UInt64
    public var elapsedNanoseconds: UInt64
}

/// Replays capture files through source thread -> rings -> decode workers -> ring -> sink.
public final class ReplayPipeline {
    public let configuration: PipelineConfiguration

    public init(configuration: PipelineConfiguration) throws(ConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
    }

    /// Runs the files in order; `progress` is called on the calling thread every `progressIntervalNanoseconds`.
    /// Throws before starting when a file cannot be opened.
    public func run(files: [String], progressIntervalNanoseconds: UInt64 = 0,
                    progress: (PipelineProgress) -> Void = { _ in },
                    onFlow: (@Sendable (FlowRecord) -> Void)? = nil,
                    onEvent: (@Sendable (consuming StateEvent) -> Void)? = nil) throws -> PipelineSummary
    {
        let readers = try files.map { try CaptureFileReader(path: $0) }
        let c = configuration
        let pool = FramePool(frameSize: c.frameSize, frameCount: c.frameCount)
        let workers = (0..<c.workers).map { _ in DecodeWorker(configuration: c, pool: pool) }
        let sink = FlowSink(inputs: workers.map(\.output), events: workers.map(\.events), maxDevices: c.maxDevices,
                            observer: onFlow, eventObserver: onEvent)
        let source = FileSource(readers: readers, pool: pool, workers: workers, configuration: c)
        let control = RunControl()

        let start = monotonicNanoseconds()
        func cpu(_ i: Int) -> Int? {
            guard let cpus = c.cpus, !cpus.isEmpty else { return nil }
            return cpus[i % cpus.count]
        }
        let sinkThread = PosixThread(name: "statetap-sink", cpu: cpu(c.workers + 1)) {
            sink.run(workersFinished: { workers.allSatisfy { $0.finished.load(ordering: .acquiring) } })
        }
        let workerThreads = workers.enumerated().map { i, w in
            PosixThread(name: "statetap-w\(i)", cpu: cpu(i + 1)) { w.run(sourceFinished: control.sourceFinished) }
        }
        let sourceThread = PosixThread(name: "statetap-src", cpu: cpu(0)) {
            source.run()
            // Pairs with the workers' acquiring load: all frames are published before this.
            control.sourceFinished.store(true, ordering: .releasing)
        }
        if progressIntervalNanoseconds > 0 {
            var next = start + progressIntervalNanoseconds
            while !control.sourceFinished.load(ordering: .acquiring)
                || !workers.allSatisfy({ $0.finished.load(ordering: .acquiring) })
            {
                var ts = timespec(tv_sec: 0, tv_nsec: 20_000_000)
                nanosleep(&ts, nil)
                let now = monotonicNanoseconds()
                if now >= next {
                    next = now + progressIntervalNanoseconds
                    progress(PipelineProgress(
                        packetsRead: source.packetsRead.load(ordering: .relaxed),
                        packetsDecoded: workers.reduce(0) { $0 + $1.progress.load(ordering: .relaxed) },
                        elapsedNanoseconds: now - start))
                }
            }
        }
        sourceThread.join()
        for t in workerThreads { t.join() }
        sinkThread.join()
        // The workers returned their last frames after the source stopped reclaiming: take them back now (every
        // thread is joined, so this thread may act as the source). A frame still out would trap in debug builds.
        source.reclaim()
        let framesLost = pool.totalSlots - pool.freeCount
        let wall = monotonicNanoseconds() - start

        var s = PipelineSummary()
        s.files = files
        s.workers = c.workers
        s.tlsKeys = c.tlsKeys?.counters
        for w in workers { s.counters.merge(w.counters) }
        s.framesTooLarge = source.framesTooLarge
        s.counters.errors[Int(DecodeError.frameTooLarge.rawValue)] += source.framesTooLarge
        s.ringFullEvents = source.ringFullEvents
        s.ringFullDrops = source.ringFullDrops
        s.poolWaits = source.poolWaits
        s.readErrors = source.readErrors
        s.add(sink)
        s.wallNanoseconds = wall
        s.framesNotReturned = framesLost
        return s
    }
}

/// Flags shared by the threads of one run.
final class RunControl: Sendable {
    let sourceFinished = Atomic<Bool>(false)
}
