import Extract
import ArgumentParser
import Foundation
import Logging
import Migration
import Pipeline
import Tap
import ServiceLifecycle
import Synchronization

struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay pcap/pcapng files through the decode pipeline and print a summary.",
        discussion: """
            Files are read in order (opened with libpcap; classic pcap records read in 1 MB chunks; Ethernet, \
            Linux cooked SLL/SLL2, BSD loopback and raw IP link types). \
            Nothing is dropped: when a ring is full the reader waits. The summary counts packets per layer, \
            flows, devices and every decode error by reason.

            Exit status: 0 when every file was read and every record journaled; 2 when a file could not be read \
            (the others are); 3 when the journal could not write every record (disk full, write errors): the \
            summary's journal section and the error line say how many.

            With --serve (and --journal), the control plane API is served while the files are replayed and \
            afterwards, until SIGINT or SIGTERM: migrations can be planned from what the files taught.
            """)

    @Argument(help: "Capture files (pcap or pcapng).")
    var files: [String]

    @Flag(help: "Print the summary as one JSON object.")
    var json = false

    @Option(help: "Seconds between progress lines on standard error (0: none).")
    var progressInterval: Double = 2

    @OptionGroup var pipeline: PipelineOptions
    @OptionGroup var eventOptions: EventOptions
    @OptionGroup(title: "HTTPS") var tls: TLSOptions
    @OptionGroup(title: "Journal") var journalOptions: JournalCLIOptions
    @OptionGroup(title: "Control plane") var control: ControlPlaneOptions
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        try tls.validate(serving: control.serve != nil)
        for f in files where !FileManager.default.isReadableFile(atPath: f) {
            let why = FileManager.default.fileExists(atPath: f) ? "permission denied" : "no such file"
            throw ValidationError("cannot read capture file '\(f)': \(why)")
        }
    }

    func run() async throws {
        let log = global.bootstrap()
        var configuration = try pipeline.makeConfiguration()
        let keys = try tls.make(&configuration, log: log)
        let writer = try eventOptions.makeWriter()
        // A file is replayed without loss: when the journal falls behind, the sink waits for it.
        let journal = try journalOptions.openSession(dropWhenFull: false, log: log)
        let plane: (ControlPlane, any Service)?
        do { plane = try control.make(journal: journal, tlsKeys: keys?.0, log: log) } catch {
            _ = journal?.finish()
            throw error
        }
        let files = files, progressInterval = progressInterval, pipelineConfiguration = configuration
        let replay = { @Sendable () throws -> PipelineSummary in
            try runReplay(files: files, configuration: pipelineConfiguration, progressInterval: progressInterval,
                          log: log, onEvent: eventSink(writer, journal))
        }
        let summary: PipelineSummary
        if let (controlPlane, server) = plane, let journal {
            controlPlane.metrics.setProvider { journalSamples(journal) }
            let done = ReplayAndServe(replay: replay, log: log)
            let group = ServiceGroup(configuration: .init(
                services: [.init(service: server), .init(service: done)] + (keys?.1.map { [.init(service: $0)] } ?? []),
                gracefulShutdownSignals: [.sigterm, .sigint], logger: log))
            do {
                try await group.run()
                controlPlane.shutdown()
                summary = try done.result()
            } catch {
                controlPlane.shutdown()
                writer?.close()
                _ = journal.finish()
                throw error
            }
        } else {
            summary = try await onThread(replay)
        }
        writer?.close()
        let journalSection = journal?.finish()
        let text = json ? SummaryFormatter.json(summary, journal: journalSection)
            : SummaryFormatter.text(summary, journal: journalSection)
        if eventOptions.eventsOnStdout {
            FileHandle.standardError.write(Data((text + "\n").utf8))
        } else {
            print(text)
        }
        if !summary.readErrors.isEmpty { throw ExitCode(2) }
        if let lost = journal?.lostRecords, lost.lost > 0 {
            log.error("journal: \(lost.lost) of \(lost.appended) records were not written (disk full: \(lost.diskFull), write errors: \(lost.writeError), queue full: \(lost.queueFull)): the journal is incomplete")
            throw ExitCode(3)
        }
    }
}

/// Runs the pipeline with progress on standard error; shared by `replay` and `demo`.
func runReplay(files: [String], configuration: PipelineConfiguration, progressInterval: Double,
               log: Logger, onEvent: (@Sendable (consuming StateEvent) -> Void)? = nil) throws -> PipelineSummary
{
    let pipeline = try ReplayPipeline(configuration: configuration)
    log.info("replaying \(files.count) file(s) with \(configuration.workers) worker(s)")
    let summary = try pipeline.run(
        files: files, progressIntervalNanoseconds: progressInterval > 0 ? UInt64(progressInterval * 1e9) : 0,
        progress: { p in
            let rate = p.elapsedNanoseconds > 0 ? Double(p.packetsDecoded) * 1e9 / Double(p.elapsedNanoseconds) : 0
            log.info("progress: \(p.packetsRead) read, \(p.packetsDecoded) decoded, \(Int(rate)) packets/s")
        }, onEvent: onEvent)
    for e in summary.readErrors { log.error("read error: \(e)") }
    return summary
}

/// Runs a blocking job on its own thread (not on the concurrency pool, which serves the API meanwhile).
func onThread<T: Sendable>(_ job: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try job() }) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}

/// `replay --serve`: the replay, then serving until a signal (the API stays up after the files end).
final class ReplayAndServe: Service, Sendable {
    private let replay: @Sendable () throws -> PipelineSummary
    private let log: Logger
    private let outcome = Mutex<Result<PipelineSummary, any Error>?>(nil)

    init(replay: @escaping @Sendable () throws -> PipelineSummary, log: Logger) {
        self.replay = replay
        self.log = log
    }

    func run() async throws {
        let result: Result<PipelineSummary, any Error>
        do { result = .success(try await onThread(replay)) } catch { result = .failure(error) }
        outcome.withLock { $0 = result }
        switch result {
        case .success(let s):
            log.info("replay done (\(s.counters.packets) packets); serving the control plane until SIGINT or SIGTERM")
        case .failure(let e):
            throw e  // ends the group: nothing to serve from a replay that failed
        }
        // Serve on until a signal ends the group.
        try? await gracefulShutdown()
    }

    func result() throws -> PipelineSummary {
        guard let r = outcome.withLock({ $0 }) else { throw CancellationError() }
        return try r.get()
    }
}
