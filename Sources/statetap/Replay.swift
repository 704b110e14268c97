import ArgumentParser
import Foundation
import Logging
import Pipeline

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay pcap/pcapng files through the decode pipeline and print a summary.",
        discussion: """
            Files are read in order (opened with libpcap; classic pcap records read in 1 MB chunks; Ethernet, \
            Linux cooked SLL/SLL2, BSD loopback and raw IP link types). \
            Nothing is dropped: when a ring is full the reader waits. The summary counts packets per layer, \
            flows, devices and every decode error by reason.
            """)

    @Argument(help: "Capture files (pcap or pcapng).")
    var files: [String]

    @Flag(help: "Print the summary as one JSON object.")
    var json = false

    @Option(help: "Seconds between progress lines on standard error (0: none).")
    var progressInterval: Double = 2

    @OptionGroup var pipeline: PipelineOptions
    @OptionGroup var eventOptions: EventOptions
    @OptionGroup(title: "Journal") var journalOptions: JournalCLIOptions
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        for f in files where !FileManager.default.isReadableFile(atPath: f) {
            let why = FileManager.default.fileExists(atPath: f) ? "permission denied" : "no such file"
            throw ValidationError("cannot read capture file '\(f)': \(why)")
        }
    }

    func run() throws {
        let log = global.bootstrap()
        let configuration = try pipeline.makeConfiguration()
        let writer = try eventOptions.makeWriter()
        // A file is replayed without loss: when the journal falls behind, the sink waits for it.
        let journal = try JournalSession.open(journalOptions, dropWhenFull: false, log: log)
        let summary = try runReplay(files: files, configuration: configuration, progressInterval: progressInterval,
                                    log: log, onEvent: eventSink(writer, journal))
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
    }
}

/// Runs the pipeline with progress on standard error; shared by `replay` and `demo`.
func runReplay(files: [String], configuration: PipelineConfiguration, progressInterval: Double,
               log: Logger, onEvent: (@Sendable (StateEvent) -> Void)? = nil) throws -> PipelineSummary
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
