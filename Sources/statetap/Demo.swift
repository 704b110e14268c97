import ArgumentParser
import Foundation
import Pipeline

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a synthetic capture and replay it: the complete pipeline, no privileges needed.",
        discussion: """
            Writes a capture of synthetic mobile-edge traffic (see `statetap generate --help`) to a temporary \
            file, replays it through the pipeline, prints the summary and checks it against what was generated.
            """)

    @Option(help: "Packets to generate.")
    var packets: Int = 200_000

    @Flag(help: "Print the summary as one JSON object.")
    var json = false

    @Option(help: "Keep the generated capture at this path instead of a temporary file.")
    var keep: String?

    @OptionGroup var pipeline: PipelineOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let log = global.bootstrap()
        let configuration = try pipeline.makeConfiguration()
        let path = keep ?? NSTemporaryDirectory() + "statetap-demo-\(getpid()).pcap"
        defer { if keep == nil { try? FileManager.default.removeItem(atPath: path) } }
        log.info("generating \(packets) packets of synthetic traffic into \(path)")
        let truth = try writeSyntheticCapture(path: path, packets: packets, format: .pcap, seed: 0x5747_4154_4150)
        let s = try runReplay(files: [path], configuration: configuration, progressInterval: 2, log: log)
        print(json ? SummaryFormatter.json(s) : SummaryFormatter.text(s))
        // The generator knows what it wrote: a demo that disagrees with it is a failure, not a show.
        let c = s.counters
        let checks: [(String, Int, Int)] = [
            ("packets", Int(c.packets), truth.packets),
            ("tcp flows", Int(s.flowsTCP), truth.tcpFlows),
            ("udp flows", Int(s.flowsUDP), truth.udpFlows),
            ("devices", s.devices, truth.devices.count),
            ("gtpu packets", Int(c.packets(with: .gtpu)), truth.gtpuPackets),
            ("vlan packets", Int(c.packets(with: .vlan)), truth.vlanPackets),
            ("fragments", Int(c.packets(with: .fragment)), truth.fragmentPackets),
            ("malformed", Int(c.errors.reduce(0, +)), truth.truncatedPackets),
        ]
        let failed = checks.filter { $0.1 != $0.2 }
        // With --json stdout holds only the JSON object: the check goes to standard error.
        var report = ""
        if failed.isEmpty {
            report = "check: all \(checks.count) counts match the generated ground truth"
        } else {
            report = failed.map { "check FAILED: \($0.0) decoded \($0.1), generated \($0.2)" }.joined(separator: "\n")
        }
        if json {
            FileHandle.standardError.write(Data((report + "\n").utf8))
        } else {
            print("\n" + report)
        }
        if !failed.isEmpty { throw ExitCode(1) }
    }
}
