import Capture
import Decode
import Extract
import Rings
import Synchronization
import XDPCapture
import XDPPrograms
#if canImport(Glibc)
import Glibc
#endif

/// How the stages of a live queue share threads.
public enum LiveThreading: String, Sendable, CaseIterable {
    /// Run to completion: the capture thread decodes and tracks each frame itself (fewest threads; best on
    /// 2-core machines).
    case inline
    /// A capture thread per queue and `--workers` decode threads behind it, connected by rings.
    case threads
}

/// What live capture needs beyond the pipeline's own configuration.
public struct LiveConfiguration: Sendable {
    public var interface: String
    /// "all", "N", "N-M" or a list.
    public var queues = "all"
    public var socket = SocketConfiguration()
    public var xdpMode = XDPMode.auto
    /// Replace an XDP program already on the interface.
    public var force = false
    /// The steering object to load instead of the embedded one.
    public var bpfObject: String?
    public var steering = SteeringConfiguration()
    public var threading = LiveThreading.inline
    /// Stop after this many frames (all queues together).
    public var packetLimit: UInt64?
    /// Keep what was captured in this pcap file (one file per queue, suffixed .qN, when there are several).
    public var pcapPath: String?

    public init(interface: String) { self.interface = interface }
}

/// One queue's figures at a moment.
public struct QueueStatistics: Sendable {
    public var queue: UInt32
    public var rxPackets: UInt64
    public var rxBytes: UInt64
    public var kernel: SocketStatistics
    public var ringFullDrops: UInt64
    public var emptyPolls: UInt64
    public var fillShortages: UInt64
}

/// Figures of a live run at a moment.
public struct LiveStatistics: Sendable {
    public var queues: [QueueStatistics]
    /// The XDP program's counters (every queue, every CPU).
    public var program: SteeringCounters
    public var packetsDecoded: UInt64
    public var elapsedNanoseconds: UInt64
    /// Devices whose flow totals the sink keeps, and how many it evicted (least recently seen) to stay within
    /// `maxDevices`.
    public var devices = 0
    public var devicesEvicted: UInt64 = 0
}

/// How the run was set up, for the log.
public struct LiveSetup: Sendable {
    public var interface: String
    public var queues: [UInt32]
    public var xdpMode: String
    public var zeroCopy: Bool
    public var bindFallbacks: [String]
    public var replaced: String?
    public var bpfObject: String
    public var threading: LiveThreading
}

/// AF_XDP capture on an interface through the same workers and sink as replay. `init` sets everything up
/// (program loaded and attached, sockets bound) and throws `CaptureError` with a clear message when it cannot;
/// `start` runs; `stop` asks every thread to finish; `finish` joins, detaches the program and summarizes.
public final class LivePipeline: @unchecked Sendable {
    // @unchecked Sendable: `start`/`finish` are called by the owner; other threads only read atomics.
    public let configuration: PipelineConfiguration
    public let live: LiveConfiguration
    public let setup: LiveSetup
    private let program: SteeringProgram
    private let attachment: XDPAttachment
    private let sockets: [XSKQueue]
    private let pools: [FramePool]
    private let workers: [[DecodeWorker]]
    private let sources: [XDPSource]
    private let sink: FlowSink
    private let shared = LiveShared()
    private var threads: [PosixThread] = []
    private var sinkThread: PosixThread?
    private let sourcesFinished: [RunControl]
    private var startTime: UInt64 = 0
    /// Why a `--write-pcap` file stopped early (set by `finish`).
    public private(set) var pcapErrors: [String] = []

    public init(configuration c: PipelineConfiguration, live: LiveConfiguration,
                onFlow: (@Sendable (FlowRecord) -> Void)? = nil,
                onEvent: (@Sendable (consuming StateEvent) -> Void)? = nil) throws(CaptureError)
    {
        do { try c.validate() } catch { throw CaptureError(.invalidConfiguration, error.message) }
        try live.socket.validate()
        if live.threading == .inline && c.workers != 1 {
            throw CaptureError(.invalidConfiguration,
                               "--pipeline inline runs one worker per queue on the capture thread; use --pipeline "
                               + "threads for --workers \(c.workers)")
        }
        var c = c
        c.onFullRing = .drop  // live: never stall the rx ring behind a slow worker
        configuration = c
        self.live = live
        let interface = try NetworkInterface(name: live.interface)
        let queues = try interface.queues(live.queues)
        do {
            program = try SteeringProgram(path: live.bpfObject, configuration: live.steering)
        } catch let e as BPFError {
            if e.verifierLog != nil { throw CaptureError(.verifierRejected, e.description) }
            if e.code == EPERM || e.code == EACCES { throw CaptureError.system(e.operation, errno: e.code) }
            throw CaptureError(.system, e.description)
        } catch {
            throw CaptureError(.system, "\(error)")
        }
        var sockets: [XSKQueue] = []
        for q in queues {
            sockets.append(try XSKQueue(interface: interface, queue: q, configuration: live.socket,
                                        socketsMapFD: program.socketsMapFD))
        }
        self.sockets = sockets
        pools = sockets.map {
            FramePool(umem: $0.umemArea, frameSize: $0.configuration.frameSize, frameCount: $0.configuration.frameCount)
        }
        let workerCount = live.threading == .inline ? 1 : c.workers
        workers = pools.map { pool in (0..<workerCount).map { _ in DecodeWorker(configuration: c, pool: pool, liveClock: true) } }
        sink = FlowSink(inputs: workers.flatMap { $0.map(\.output) }, events: workers.flatMap { $0.map(\.events) },
                        maxDevices: c.maxDevices, observer: onFlow, eventObserver: onEvent)
        var sources: [XDPSource] = []
        for (i, s) in sockets.enumerated() {
            var dumper: PcapWriter?
            if let path = live.pcapPath {
                let file = sockets.count == 1 ? path : "\(path).q\(s.queueID)"
                do { dumper = try PcapWriter(path: file, linkType: .ethernet) } catch {
                    throw CaptureError(.system, "--write-pcap: \(error)")
                }
            }
            sources.append(XDPSource(socket: s, workers: workers[i], pool: pools[i], inline: live.threading == .inline,
                                     configuration: c, dumper: dumper, packetLimit: live.packetLimit, shared: shared))
        }
        self.sources = sources
        sourcesFinished = sockets.map { _ in RunControl() }
        // Sockets bound (a queue another AF_XDP program holds fails above, before --force removes anything) and
        // fill rings full: only now is the program replaced if asked, and attached.
        let replaced = try XDPAttachment.clear(interface, force: live.force)
        attachment = try XDPAttachment(programFD: program.programFD, interface: interface, mode: live.xdpMode,
                                       replaced: replaced)
        setup = LiveSetup(interface: interface.name, queues: queues, xdpMode: attachment.mode,
                          zeroCopy: sockets.allSatisfy(\.zeroCopy), bindFallbacks: sockets.compactMap(\.fallbackReason),
                          replaced: attachment.replaced?.description, bpfObject: program.path, threading: live.threading)
    }

    /// Starts the threads: per queue a capture thread (and its workers with `threads`), one sink.
    /// CPUs (`--cpus`) are taken in order: queue 0's capture thread, its workers, queue 1's, ..., the sink.
    public func start() {
        startTime = monotonicNanoseconds()
        var next = 0
        func cpu() -> Int? {
            guard let cpus = configuration.cpus, !cpus.isEmpty else { return nil }
            defer { next += 1 }
            return cpus[next % cpus.count]
        }
        for (i, source) in sources.enumerated() {
            let control = sourcesFinished[i]
            let q = sockets[i].queueID
            threads.append(PosixThread(name: "statetap-q\(q)", cpu: cpu()) {
                source.run()
                if source.dispatcher.inline { source.dispatcher.workers[0].finish() }
                // Pairs with the workers' acquiring load: every frame is published before this.
                control.sourceFinished.store(true, ordering: .releasing)
            })
            if live.threading == .threads {
                for (j, w) in workers[i].enumerated() {
                    threads.append(PosixThread(name: "statetap-q\(q)w\(j)", cpu: cpu()) {
                        w.run(sourceFinished: control.sourceFinished)
                    })
                }
            }
        }
        let all = workers.flatMap { $0 }
        sinkThread = PosixThread(name: "statetap-sink", cpu: cpu()) { [sink] in
            sink.run(workersFinished: { all.allSatisfy { $0.finished.load(ordering: .acquiring) } })
        }
    }

    /// Asks every thread to finish (what is already in the rx rings is still processed). Safe from any thread,
    /// including a signal handler's task.
    public func stop() { shared.stop.store(true, ordering: .relaxed) }

    /// Whether the run ended by itself (the packet limit) or was asked to.
    public var stopRequested: Bool { shared.stop.load(ordering: .relaxed) }

    /// Whether every capture thread has finished.
    public var capturesFinished: Bool { sourcesFinished.allSatisfy { $0.sourceFinished.load(ordering: .acquiring) } }

    /// A snapshot, from any thread.
    public func statistics() -> LiveStatistics {
        let qs = zip(sockets, sources).map { s, src in
            QueueStatistics(queue: s.queueID, rxPackets: src.counters.rxPackets.load(ordering: .relaxed),
                            rxBytes: src.counters.rxBytes.load(ordering: .relaxed), kernel: s.statistics(),
                            ringFullDrops: src.counters.ringFullDrops.load(ordering: .relaxed),
                            emptyPolls: src.counters.emptyPolls.load(ordering: .relaxed),
                            fillShortages: src.counters.fillShortages.load(ordering: .relaxed))
        }
        let decoded = workers.joined().reduce(0) { $0 + $1.progress.load(ordering: .relaxed) }
        return LiveStatistics(queues: qs, program: (try? program.counters()) ?? SteeringCounters(),
                              packetsDecoded: decoded, elapsedNanoseconds: monotonicNanoseconds() - startTime,
                              devices: sink.devicesNow.load(ordering: .relaxed),
                              devicesEvicted: sink.devicesEvictedNow.load(ordering: .relaxed))
    }

    /// Stops (if not yet), joins every thread, detaches the XDP program and returns the summary and the final
    /// statistics.
    public func finish() -> (summary: PipelineSummary, statistics: LiveStatistics) {
        stop()
        for t in threads { t.join() }
        sinkThread?.join()
        threads = []
        sinkThread = nil
        for s in sources { s.reclaimAfterJoin() }
        let stats = statistics()
        attachment.detach()
        pcapErrors = sources.compactMap(\.writeError)
        var s = PipelineSummary()
        s.files = []
        s.workers = workers.first?.count ?? 1
        s.tlsKeys = configuration.tlsKeys?.counters
        for w in workers.joined() { s.counters.merge(w.counters) }
        s.ringFullEvents = sources.reduce(0) { $0 + $1.dispatcher.ringFullEvents }
        s.ringFullDrops = sources.reduce(0) { $0 + $1.dispatcher.ringFullDrops }
        s.add(sink)
        s.wallNanoseconds = monotonicNanoseconds() - startTime
        // Frames taken from the rx rings and never given back to a pool (must be 0).
        s.framesNotReturned = pools.reduce(0) { $0 + $1.framesOut }
        return (s, stats)
    }

    deinit {
        if sinkThread != nil { _ = finish() }
        attachment.detach()
    }
}
