import Decode
import Foundation
import PacketCraft
import Testing

/// The `statetap` binary built next to this test bundle.
let statetapBinary: URL = {
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var dir = exe.deletingLastPathComponent()
    // The runner is either .build/<config>/statetapPackageTests.xctest or a binary inside a bundle folder.
    while !FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("statetap").path),
          dir.path != "/"
    {
        dir = dir.deletingLastPathComponent()
    }
    return dir.appendingPathComponent("statetap")
}()

struct Run {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// Runs statetap with `arguments`, bounded to 120 s.
func statetap(_ arguments: [String]) throws -> Run {
    let p = Process()
    p.executableURL = statetapBinary
    p.arguments = arguments
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // Read both pipes before waiting, so a large output cannot block the child.
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    let deadline = Date().addingTimeInterval(120)
    while p.isRunning && Date() < deadline { usleep(10_000) }
    if p.isRunning { p.terminate(); Issue.record("statetap \(arguments) did not finish in 120 s") }
    p.waitUntilExit()
    return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
               stderr: String(decoding: e, as: UTF8.self))
}

func temporaryPath(_ suffix: String) -> String {
    NSTemporaryDirectory() + "statetap-cli-\(UUID().uuidString)\(suffix)"
}

@Suite("statetap command line")
struct CLITests {
    @Test("the binary exists next to the tests")
    func binaryExists() {
        #expect(FileManager.default.isExecutableFile(atPath: statetapBinary.path), "\(statetapBinary.path)")
    }

    @Test("replay --json prints one JSON object whose counts match the generated capture")
    func replayJSON() throws {
        let path = temporaryPath(".pcap")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let gen = try statetap(["generate", path, "--packets", "5000", "--truth"])
        #expect(gen.status == 0, "\(gen.stderr)")
        let truth = try #require(JSONSerialization.jsonObject(with: Data(gen.stdout.utf8)) as? [String: Any])
        let run = try statetap(["replay", path, "--json", "--progress-interval", "0"])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n")
        #expect(lines.count == 1, "one JSON object on one line")
        let summary = try #require(JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(summary["packets"] as? Int == truth["packets"] as? Int)
        #expect(summary["devices"] as? Int == truth["devices"] as? Int)
        let flows = try #require(summary["flows"] as? [String: Any])
        #expect(flows["tcp"] as? Int == truth["tcp_flows"] as? Int)
        let layers = try #require(summary["layers"] as? [String: Any])
        #expect(layers["gtpu"] as? Int == truth["gtpu"] as? Int)
        // Every error reason is listed, zeros included: a stable schema for tools.
        let errors = try #require(summary["errors"] as? [String: Any])
        #expect(Set(errors.keys) == Set(DecodeError.allCases.map(\.name)))
        #expect(errors.values.compactMap { $0 as? Int }.reduce(0, +) == truth["truncated"] as? Int)
    }

    @Test("the text summary names packets, layers, flows, devices and error reasons")
    func replayText() throws {
        let path = temporaryPath(".pcapng")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try statetap(["generate", path, "--packets", "2000", "--format", "pcapng"]).status == 0)
        let run = try statetap(["replay", path])
        #expect(run.status == 0)
        for field in ["packets:", "bytes:", "packets_per_second:", "layers:", "  vlan:", "  gtpu:", "flows:",
                      "devices:", "errors:", "ipv4_truncated:"] {
            #expect(run.stdout.contains(field), "missing \(field)")
        }
    }

    @Test("bad flags and files are refused with a message that says what is wrong", arguments: [
        (["replay", "/nonexistent.pcap"], "no such file"),
        (["replay", "--workers", "0", "/dev/null"], "--workers must be 1...64"),
        (["replay", "--ring-size", "1000", "/dev/null"], "power of two"),
        (["replay", "--batch", "0", "/dev/null"], "--batch must be"),
        (["replay", "--subscriber-prefix", "10.0.0.0/33", "/dev/null"], "prefix length must be 0...32"),
        (["replay", "--cpus", "0,x", "/dev/null"], "--cpus takes"),
        (["replay", "--flow-timeout", "0", "/dev/null"], "--flow-timeout must be"),
        (["generate", "/tmp/x.pcap", "--packets", "0"], "--packets must be at least 1"),
        (["generate", "/tmp/x.pcap", "--format", "cap"], "format"),
        (["capture"], "Missing expected argument '--interface"),
        (["replay", "/dev/null", "--events-out", "/tmp/x.jsonl"], "--events-out needs --events jsonl"),
        (["replay", "/dev/null", "--events", "xml"], "events"),
        (["capture", "-i", "lo", "--frame-size", "1000"], "--frame-size must be 2048 or 4096"),
        (["capture", "-i", "lo", "--rx-ring", "1000"], "--rx-ring must be a power of two"),
        (["capture", "-i", "lo", "--frames", "4096"], "must be at least the fill ring"),
        (["capture", "-i", "lo", "--workers", "2"], "--pipeline inline runs one worker per queue"),
        (["capture", "-i", "lo", "--bind", "fast"], "bind"),
        (["capture", "-i", "lo", "--xdp-mode", "hw"], "xdp-mode"),
        (["capture", "-i", "lo", "--tcp-ports", "80,http"], "--tcp-ports takes a comma-separated list"),
        (["capture", "-i", "lo", "--udp-ports", "1,2,3,4,5,6,7,8,9"], "at most 8 ports"),
        (["capture", "-i", "lo", "--count", "0"], "--count must be at least 1"),
        (["capture", "-i", "lo", "--bpf-object", "/nonexistent.o"], "cannot read --bpf-object"),
        (["capture", "-i", "no-such-if9"], "no network interface named 'no-such-if9'"),
        (["capture", "-i", "lo", "--queues", "5"], "queue 5 is out of range: lo has 1 rx queue"),
        (["capture", "-i", "lo", "--queues", "x-y"], "--queues takes 'all'"),
        (["send", "-i", "lo", "/nonexistent.pcap"], "cannot read capture file"),
        (["send", "-i", "lo", "/dev/null", "--batch", "300"], "--batch must be 1...256"),
        (["send", "-i", "lo", "/dev/null", "--engine", "pktgen"], "--engine must be auto, live-frames, xsk or packet"),
        (["send", "-i", "lo", "/dev/null", "--count", "0"], "--count must be at least 1"),
        (["send", "-i", "lo", "/dev/null", "--count", "5", "--loops", "2"], "--loops and --count exclude each other"),
        (["send", "-i", "lo", "/dev/null", "--rate", "0.5"], "--rate must be 0 (unpaced) or 1...1e9"),
        (["replay", "/dev/null", "--serve", "127.0.0.1:8089", "--agent-networks", "10.0.0.0/40"], "--agent-networks: '10.0.0.0/40': the prefix length must be 0...32"),
        (["replay", "/dev/null", "--serve", "127.0.0.1:8089", "--agent-schemes", "ftp"], "--agent-schemes takes http, https or both"),
        (["replay", "/dev/null", "--agent-networks", "10.0.0.0/8"], "--edges, --advertise and --agent-networks need --serve"),
        (["replay", "/dev/null", "--tls-keys-from-api"], "--tls-keys-from-api needs --serve"),
        (["capture", "-i", "lo", "--tls-keys-from-api"], "--tls-keys-from-api needs --serve"),
        (["replay", "/dev/null", "--tls-keylog", "/nonexistent.log"], "cannot read the TLS key log '/nonexistent.log'"),
        (["replay", "/dev/null", "--tls-max-held", "0"], "--tls-max-held must be 1...4096 MB"),
    ])
    func badInput(arguments: [String], message: String) throws {
        let run = try statetap(arguments)
        #expect(run.status != 0)
        #expect(run.stderr.contains(message), "stderr: \(run.stderr)")
    }

    @Test("a file that is not a capture fails with libpcap's reason and a non-zero status")
    func notACapture() throws {
        let path = temporaryPath(".txt")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("hello, this is not a capture file\n".utf8).write(to: URL(fileURLWithPath: path))
        let run = try statetap(["replay", path])
        #expect(run.status != 0)
        #expect(run.stderr.contains(path))
    }

    @Test("demo checks itself against the generated ground truth, also with --json")
    func demo() throws {
        let run = try statetap(["demo", "--packets", "3000", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("all 8 counts match the generated ground truth"))
        #expect((try? JSONSerialization.jsonObject(with: Data(run.stdout.utf8))) != nil)
    }

    @Test("--help explains the commands")
    func help() throws {
        let run = try statetap(["replay", "--help"])
        #expect(run.status == 0)
        for flag in ["--workers", "--ring-size", "--batch", "--json", "--subscriber-prefix"] {
            #expect(run.stdout.contains(flag))
        }
        let capture = try statetap(["capture", "--help"])
        #expect(capture.status == 0)
        for flag in ["--interface", "--queues", "--bind", "--xdp-mode", "--pipeline", "--busy-poll", "--stats-interval",
                     "--write-pcap", "--force", "--bpf-object", "--steer", "bpf_link", "XDP_STATISTICS"] {
            #expect(capture.stdout.contains(flag), "capture --help lacks \(flag)")
        }
    }
}
