import Capture
import Decode
import Foundation
import PacketCraft
import Testing
import XDPPrograms

/// Every steering case's frame, case i repeated (i % 3) + 1 times, so a frame counted twice or lost changes the
/// totals; the frames of interest among them, in the order sent.
private struct TrafficPlan {
    var sent: [[UInt8]] = []
    var steered: [[UInt8]] = []
    var malformed = 0

    init() {
        for (i, c) in steeringCases.enumerated() {
            for _ in 0..<(i % 3 + 1) {
                sent.append(c.frame)
                switch c.expected {
                case .ofInterest: steered.append(c.frame)
                case .malformed: malformed += 1
                case .passed: break
                }
            }
        }
    }
}

private func writePcap(_ frames: [[UInt8]], to path: String) throws {
    let w = try PcapWriter(path: path, linkType: .ethernet)
    for (i, f) in frames.enumerated() { try w.write(packet: f, timestampNanoseconds: 1_700_000_000_000_000_000 + UInt64(i) * 1000) }
    try w.close()
}

private func readPcap(_ path: String) throws -> [[UInt8]] {
    let r = try CaptureFileReader(path: path)
    var out: [[UInt8]] = []
    while case .packet(let bytes, _, _) = r.next() { out.append(Array(bytes)) }
    return out
}

/// The engines `statetap send` has.
private enum GeneratorEngineName {
    static let all: Set<String> = ["live-frames", "xsk", "packet"]
}

private func json(_ s: String) throws -> [String: Any] {
    let line = try #require(s.split(separator: "\n").last { $0.hasPrefix("{") }, "no JSON summary in: \(s)")
    return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
}

private func tempPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("statetap-\(getpid())-\(UUID().uuidString)-\(name)").path
}

/// Sends the frames of a pcap out of `interface` in namespace `ns` through an AF_PACKET socket (the kernel's
/// normal transmit path, one system call per frame: fine for many distinct frames, where the live-frames generator
/// pays a setup per distinct frame).
private func rawSend(ns: String, interface: String, pcap: String) throws -> CommandResult {
    let script = """
        import socket, struct, sys
        d = open(sys.argv[2], 'rb').read(); o = 24; n = 0
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind((sys.argv[1], 0))
        while o < len(d):
            l = struct.unpack('<I', d[o + 8:o + 12])[0]; s.send(d[o + 16:o + 16 + l]); o += 16 + l; n += 1
        print(n)
        """
    return try sh(["ip", "netns", "exec", ns, "python3", "-c", script, interface, pcap], timeout: 120)
}

/// `count` TCP SYNs of `count` distinct flows (client ports from 10000), HTTP port 80.
private func synFlood(_ count: Int) -> [[UInt8]] {
    (0..<count).map { i in
        PacketBuilder.build([.ethernet(), .ipv4(src: a4, dst: b4), .tcp(src: UInt16(10000 + i), dst: 80, flags: TCPFlags.syn)])
    }
}

@Suite("Live AF_XDP capture on a veth pair in network namespaces", .serialized,
       .enabled(if: isRoot, "needs root: network namespaces, XDP and AF_XDP"))
struct LiveCaptureTests {
    @Test("every steered frame is captured once, decoded like its replay, ping works, nothing left attached",
          arguments: ["inline", "threads"])
    func steeredFramesCountedOnce(pipeline: String) throws {
        let lab = try VethLab()
        defer { lab.remove() }
        let plan = TrafficPlan()
        let sentPath = tempPath("sent.pcap"), capturedPath = tempPath("captured.pcap"), steeredPath = tempPath("steered.pcap")
        defer { for p in [sentPath, capturedPath, steeredPath] { try? FileManager.default.removeItem(atPath: p) } }
        try writePcap(plan.sent, to: sentPath)
        try writePcap(plan.steered, to: steeredPath)

        var args = ["capture", "-i", lab.ifB, "--xdp-mode", "native", "--stats-interval", "0", "--json",
                    "--write-pcap", capturedPath, "--pipeline", pipeline]
        if pipeline == "threads" { args += ["--workers", "2"] }
        let capture = try lab.statetap(in: lab.nsB, args)
        #expect(lab.waitUntilCapturing(capture), "capture did not start: \(capture.stderrSoFar)")
        #expect(try lab.xdpAttached(), "the XDP program is on the interface while capturing")
        #expect(capture.stderrSoFar.contains("XDP native mode, AF_XDP copy mode"), "\(capture.stderrSoFar)")
        #expect(capture.stderrSoFar.contains("--bind auto: zero-copy AF_XDP is not supported"),
                "auto must say it fell back to copy mode")

        // The kernel still gets ARP and ICMP: ping across the pair works while statetap captures.
        let ping = try sh(["ip", "netns", "exec", lab.nsA, "ping", "-c", "3", "-i", "0.2", "-W", "2", lab.addressB],
                          timeout: 20)
        #expect(ping.status == 0, "ping failed while capturing: \(ping.stdout) \(ping.stderr)")

        let send = try lab.statetapRun(in: lab.nsA, ["send", "-i", lab.ifA, sentPath, "--json"])
        #expect(send.status == 0, "send failed: \(send.stderr)")
        let sent = try json(send.stdout)
        #expect(sent["frames_sent"] as? Int == plan.sent.count)
        #expect(GeneratorEngineName.all.contains(sent["engine"] as? String ?? ""), "the summary names the engine: \(sent)")

        usleep(300_000)
        capture.signal(SIGINT)
        let result = capture.wait(timeout: 30)
        #expect(result.status == 0, "capture exited \(result.status): \(result.stderr)")
        let summary = try json(result.stdout)
        let live = try #require(summary["live"] as? [String: Any])
        let program = try #require(live["program"] as? [String: Any])
        let queue = try #require((live["queues"] as? [String: Any])?["0"] as? [String: Any])

        #expect(summary["packets"] as? Int == plan.steered.count, "each steered frame decoded once")
        #expect(program["steered"] as? Int == plan.steered.count, "the XDP program steered exactly the frames of interest")
        #expect(program["malformed"] as? Int == plan.malformed)
        #expect(program["no_socket"] as? Int == 0)
        #expect(queue["rx_packets"] as? Int == plan.steered.count)
        for k in ["kernel_rx_dropped", "kernel_rx_ring_full", "kernel_rx_invalid_descs", "ring_full_drops"] {
            #expect(queue[k] as? Int == 0, "\(k)")
        }
        #expect((summary["pipeline"] as? [String: Any])?["frames_not_returned"] as? Int == 0)

        // Byte for byte, what was captured is the steered frames, each once (order kept on one queue).
        #expect(try readPcap(capturedPath) == plan.steered)

        // Live decoding equals the replay of the same frames: same pipeline code after the source.
        let replay = try json(try sh([statetapBinary, "replay", steeredPath, "--json"]).stdout)
        for key in ["packets", "bytes", "layers", "malformed_packets", "errors", "notices", "reassembly"] {
            let a = try JSONSerialization.data(withJSONObject: summary[key] as Any, options: [.sortedKeys, .fragmentsAllowed])
            let b = try JSONSerialization.data(withJSONObject: replay[key] as Any, options: [.sortedKeys, .fragmentsAllowed])
            #expect(a == b, "\(key): live \(String(decoding: a, as: UTF8.self)) vs replay \(String(decoding: b, as: UTF8.self))")
        }
        #expect((summary["flows"] as? [String: Any])?["total"] as? Int == (replay["flows"] as? [String: Any])?["total"] as? Int)

        #expect(try !lab.xdpAttached(), "stopping must leave no XDP program on the interface")
    }

    @Test("every flow open at the stop reaches the summary (none dropped while finishing)")
    func flowsAtStop() throws {
        let lab = try VethLab()
        defer { lab.remove() }
        let flows = 20_000  // more than the 8192-record ring between a worker and the sink
        let path = tempPath("syns.pcap")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writePcap(synFlood(flows), to: path)
        let capture = try lab.statetap(in: lab.nsB, ["capture", "-i", lab.ifB, "--xdp-mode", "native",
                                                     "--stats-interval", "0", "--json"])
        #expect(lab.waitUntilCapturing(capture), "\(capture.stderrSoFar)")
        let sent = try rawSend(ns: lab.nsA, interface: lab.ifA, pcap: path)
        #expect(sent.status == 0 && sent.stdout.contains("\(flows)"), "\(sent.stderr)")
        usleep(500_000)
        capture.signal(SIGINT)
        let result = capture.wait(timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        let summary = try json(result.stdout)
        let queue = try #require(((summary["live"] as? [String: Any])?["queues"] as? [String: Any])?["0"] as? [String: Any])
        let lost = (queue["kernel_rx_ring_full"] as? Int ?? 0) + (queue["kernel_rx_dropped"] as? Int ?? 0)
        #expect(summary["packets"] as? Int == flows - lost)
        #expect((summary["flows"] as? [String: Any])?["total"] as? Int == flows - lost)
        #expect((summary["pipeline"] as? [String: Any])?["flow_records_dropped"] as? Int == 0)
    }

    @Test("--count N stops by itself after exactly N frames")
    func countLimit() throws {
        let lab = try VethLab()
        defer { lab.remove() }
        let path = tempPath("syns.pcap")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writePcap(synFlood(3000), to: path)
        let capture = try lab.statetap(in: lab.nsB, ["capture", "-i", lab.ifB, "--xdp-mode", "native", "--count", "1000",
                                                     "--stats-interval", "0", "--json"])
        #expect(lab.waitUntilCapturing(capture), "\(capture.stderrSoFar)")
        _ = try rawSend(ns: lab.nsA, interface: lab.ifA, pcap: path)
        let result = capture.wait(timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try json(result.stdout)["packets"] as? Int == 1000)
        #expect(try !lab.xdpAttached())
    }

    @Test("two rx queues: one socket each, each queue's frames counted on it")
    func twoQueues() throws {
        let cpus = (try? sh(["nproc"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)).flatMap { Int($0) } ?? 1
        try #require(cpus >= 2, "needs 2 CPUs: a veth delivers a peer's XDP frames on queue (sending CPU % queues)")
        let lab = try VethLab(queues: 2)
        defer { lab.remove() }
        let plan = TrafficPlan()
        let steeredPath = tempPath("steered.pcap")
        defer { try? FileManager.default.removeItem(atPath: steeredPath) }
        try writePcap(plan.steered, to: steeredPath)
        let capture = try lab.statetap(in: lab.nsB, ["capture", "-i", lab.ifB, "--queues", "all", "--xdp-mode", "native",
                                                     "--stats-interval", "0", "--json"])
        #expect(lab.waitUntilCapturing(capture), "\(capture.stderrSoFar)")
        #expect(capture.stderrSoFar.contains("queues 0,1"))
        // From CPU 0 the frames land on queue 0, from CPU 1 on queue 1: once and three times.
        for (cpu, times) in [(0, 1), (1, 3)] {
            let r = try sh(["ip", "netns", "exec", lab.nsA, "taskset", "-c", "\(cpu)", statetapBinary, "send", "-i", lab.ifA,
                            steeredPath, "--repeat", "\(times)"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        usleep(300_000)
        capture.signal(SIGINT)
        let result = capture.wait(timeout: 30)
        #expect(result.status == 0, "\(result.stderr)")
        let summary = try json(result.stdout)
        let queues = try #require((summary["live"] as? [String: Any])?["queues"] as? [String: [String: Any]])
        #expect(queues["0"]?["rx_packets"] as? Int == plan.steered.count)
        #expect(queues["1"]?["rx_packets"] as? Int == plan.steered.count * 3)
        #expect(summary["packets"] as? Int == plan.steered.count * 4)
        #expect(try !lab.xdpAttached())
    }

    @Test("kill -9 mid-capture leaves nothing that blocks the next start")
    func killAndRestart() throws {
        let lab = try VethLab()
        defer { lab.remove() }
        let plan = TrafficPlan()
        let sentPath = tempPath("sent.pcap")
        defer { try? FileManager.default.removeItem(atPath: sentPath) }
        try writePcap(plan.sent, to: sentPath)

        let first = try lab.statetap(in: lab.nsB, ["capture", "-i", lab.ifB, "--xdp-mode", "native", "--stats-interval", "0"])
        #expect(lab.waitUntilCapturing(first))
        // Traffic in flight while it dies.
        let sender = try lab.statetap(in: lab.nsA, ["send", "-i", lab.ifA, sentPath, "--loops", "200"])
        usleep(200_000)
        first.signal(SIGKILL)
        _ = first.wait(timeout: 10)
        _ = sender.wait(timeout: 60)
        // The bpf_link died with the process: the kernel removed the program.
        var gone = false
        for _ in 0..<50 where !gone {
            gone = try !lab.xdpAttached()
            if !gone { usleep(100_000) }
        }
        #expect(gone, "a killed capture must not leave its XDP program behind")

        let second = try lab.statetap(in: lab.nsB, ["capture", "-i", lab.ifB, "--xdp-mode", "native",
                                                    "--stats-interval", "0", "--json"])
        #expect(lab.waitUntilCapturing(second), "restart after kill -9 failed: \(second.stderrSoFar)")
        let send = try lab.statetapRun(in: lab.nsA, ["send", "-i", lab.ifA, sentPath])
        #expect(send.status == 0)
        usleep(300_000)
        second.signal(SIGTERM)
        let result = second.wait(timeout: 30)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try json(result.stdout)["packets"] as? Int == plan.steered.count)
        #expect(try !lab.xdpAttached())
    }

    /// Captures on B while `statetap send ARGS` runs on A; returns the send summary, the capture summary and the
    /// captured frames.
    private func sendAndCapture(_ lab: VethLab, sendArgs: [String]) throws -> (send: CommandResult, capture: [String: Any], frames: [[UInt8]]) {
        let capturedPath = tempPath("captured.pcap")
        defer { try? FileManager.default.removeItem(atPath: capturedPath) }
        let capture = try lab.statetap(in: lab.nsB, ["capture", "-i", lab.ifB, "--xdp-mode", "native", "--stats-interval", "0",
                                                     "--json", "--write-pcap", capturedPath])
        #expect(lab.waitUntilCapturing(capture), "capture did not start: \(capture.stderrSoFar)")
        let send = try lab.statetapRun(in: lab.nsA, ["send", "-i", lab.ifA, "--json"] + sendArgs)
        usleep(300_000)
        capture.signal(SIGINT)
        let result = capture.wait(timeout: 30)
        #expect(result.status == 0, "capture exited \(result.status): \(result.stderr)")
        return (send, try json(result.stdout), try readPcap(capturedPath))
    }

    /// Each engine sends exactly --count frames (the file cycled and cut mid-way, with --repeat), in the plan's
    /// order, and says which engine it was.
    private func checkEngine(_ engine: String) throws {
        let lab = try VethLab()
        defer { lab.remove() }
        // 7 distinct frames of interest, each twice in a row, 40 frames: the file goes round 2 6/7 times.
        let frames = synFlood(7)
        let path = tempPath("engine.pcap")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writePcap(frames, to: path)
        let expected = (0..<40).map { frames[($0 / 2) % 7] }
        let (send, summary, captured) = try sendAndCapture(lab, sendArgs: [path, "--engine", engine, "--repeat", "2",
                                                                            "--count", "40"])
        #expect(send.status == 0, "send --engine \(engine) failed: \(send.stderr)")
        let result = try json(send.stdout)
        #expect(result["engine"] as? String == engine)
        #expect(result["frames_sent"] as? Int == 40)
        let queue = try #require(((summary["live"] as? [String: Any])?["queues"] as? [String: Any])?["0"] as? [String: Any])
        #expect(queue["rx_packets"] as? Int == 40, "every frame sent arrives once")
        #expect(summary["packets"] as? Int == 40)
        if (result["resent"] as? Int ?? 0) == 0 {
            #expect(captured == expected, "frames arrive in the plan's order")
        } else {
            #expect(captured.count == expected.count, "a resent frame may change the order, never the count")
        }
    }

    @Test("the xsk and packet engines send exactly --count frames, in order", arguments: ["xsk", "packet"])
    func userSpaceEngines(engine: String) throws {
        try checkEngine(engine)
    }

    @Test("the live-frames engine sends exactly --count frames, in order (where the kernel allows live frames)")
    func liveFramesEngine() throws {
        let onePath = try oneFramePcap()
        defer { try? FileManager.default.removeItem(atPath: onePath) }
        let probe: CommandResult
        do {
            let lab = try VethLab()
            defer { lab.remove() }
            probe = try lab.statetapRun(in: lab.nsA, ["send", "-i", lab.ifA, "--engine", "live-frames", "--count", "1", onePath])
        }
        if probe.status != 0, let line = probe.stderr.split(separator: "\n").first(where: { $0.contains("refused a live-frames") }) {
            print("SKIPPED: the live-frames engine: this kernel refuses it: \(line)")
            try Test.cancel("this kernel refuses live-frames BPF_PROG_RUN: \(line)")
        }
        try checkEngine("live-frames")
    }

    private func oneFramePcap() throws -> String {
        let path = tempPath("one.pcap")
        try writePcap(synFlood(1), to: path)
        return path
    }

    @Test("auto falls back on its own and says why; --rate paces every engine (never faster than asked)")
    func autoAndRate() throws {
        let lab = try VethLab()
        defer { lab.remove() }
        let path = try oneFramePcap()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let auto = try lab.statetapRun(in: lab.nsA, ["send", "-i", lab.ifA, path, "--count", "5", "--json"])
        #expect(auto.status == 0, "\(auto.stderr)")
        let engine = try json(auto.stdout)["engine"] as? String
        #expect(auto.stderr.contains("with the \(engine ?? "?") engine"), "auto says which engine it used: \(auto.stderr)")
        if engine != "live-frames" {
            #expect(auto.stderr.contains("not using the live-frames engine:"), "auto says why it fell back: \(auto.stderr)")
        }
        // 1000 frames at 5000/s take at least 0.19 s, whichever engine (a lower bound only: never a timed test).
        for e in ["xsk", "packet"] {
            let paced = try lab.statetapRun(in: lab.nsA, ["send", "-i", lab.ifA, path, "--engine", e, "--count", "1000",
                                                          "--rate", "5000", "--json"])
            #expect(paced.status == 0, "\(paced.stderr)")
            let r = try json(paced.stdout)
            #expect(r["frames_sent"] as? Int == 1000)
            #expect((r["seconds"] as? Double ?? 0) >= 0.19, "--rate 5000 must pace the \(e) engine: \(r)")
        }
        let bad = try lab.statetapRun(in: lab.nsA, ["send", "-i", lab.ifA, path, "--engine", "warp"])
        #expect(bad.status != 0 && bad.stderr.contains("--engine must be auto, live-frames, xsk or packet"), "\(bad.stderr)")
    }

    @Test("clear errors: no interface, no privileges, queue out of range, zero-copy, verifier, program attached")
    func errors() throws {
        let lab = try VethLab()
        defer { lab.remove() }
        func fails(_ args: [String], _ phrase: String, prefix: [String] = [], _ why: String) throws {
            let r = try sh(["ip", "netns", "exec", lab.nsB] + prefix + [statetapBinary] + args, timeout: 30)
            #expect(r.status != 0, "\(why): must fail")
            #expect(r.stderr.contains(phrase), "\(why): expected '\(phrase)' in: \(r.stderr)")
            #expect(try !lab.xdpAttached(), "\(why): nothing may stay attached")
        }
        try fails(["capture", "-i", "nosuchif0"], "no network interface named 'nosuchif0'", "no such interface")
        try fails(["capture", "-i", lab.ifB, "--queues", "3"], "queue 3 is out of range: \(lab.ifB) has 1 rx queue",
                  "queue out of range")
        try fails(["capture", "-i", lab.ifB, "--bind", "zerocopy"], "zero-copy AF_XDP is not supported",
                  "zero-copy unsupported")
        try fails(["capture", "-i", lab.ifB], "needs root, or the capabilities CAP_BPF",
                  prefix: ["setpriv", "--bounding-set=-all", "--inh-caps=-all"], "root without capabilities")
        try fails(["capture", "-i", lab.ifB], "needs root, or the capabilities CAP_BPF",
                  prefix: ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"], "not root")

        // A steering object the verifier must refuse (reads the packet without a bounds check).
        let dir = tempPath("bpf")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = dir + "/bad.bpf.c", object = dir + "/bad.bpf.o"
        try """
            #include <linux/bpf.h>
            #include <bpf/bpf_helpers.h>
            #include "statetap_common.h"
            struct { __uint(type, BPF_MAP_TYPE_XSKMAP); __uint(max_entries, 64); __type(key, __u32); __type(value, __u32); } xsks_map SEC(".maps");
            struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, STATETAP_CTR_MAX); __type(key, __u32); __type(value, __u64); } xdp_counters SEC(".maps");
            const volatile struct statetap_steer_config config = {};
            SEC("xdp") int statetap_steer(struct xdp_md *ctx) {
                unsigned char *data = (void *)(long)ctx->data;
                return data[20] == 6 ? XDP_PASS : XDP_DROP;
            }
            char LICENSE[] SEC("license") = "GPL";
            """.write(toFile: source, atomically: true, encoding: .utf8)
        let bpfDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../bpf").standardized.path
        let cc = try sh(["clang", "-target", "bpf", "-O2", "-g", "-I", bpfDir, "-I/usr/include/x86_64-linux-gnu",
                         "-c", source, "-o", object])
        try #require(cc.status == 0, "clang could not build the test object: \(cc.stderr)")
        try fails(["capture", "-i", lab.ifB, "--bpf-object", object], "the kernel's verifier rejected the program",
                  "verifier")
        let verifier = try sh(["ip", "netns", "exec", lab.nsB, statetapBinary, "capture", "-i", lab.ifB, "--bpf-object", object])
        #expect(verifier.stderr.contains("invalid access to packet"), "the verifier's own reason is printed")

        // A program someone else attached through netlink (like a crashed libxdp tool leaves): refused, then
        // replaced with --force, and nothing left afterwards.
        let other = try #require(XDPPrograms.objectPath(named: XDPPrograms.trafficgenObjectName))
        let attach = try sh(["ip", "-n", lab.nsB, "link", "set", "dev", lab.ifB, "xdpgeneric", "obj", other, "sec", "xdp"])
        try #require(attach.status == 0, "could not attach a foreign program: \(attach.stderr)")
        let refused = try lab.statetapRun(in: lab.nsB, ["capture", "-i", lab.ifB, "--duration", "1"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("already has an XDP program") && refused.stderr.contains("--force"), "\(refused.stderr)")
        let forced = try lab.statetapRun(in: lab.nsB, ["capture", "-i", lab.ifB, "--duration", "1", "--force",
                                                      "--stats-interval", "0"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(forced.stderr.contains("--force: replaced"))
        #expect(try !lab.xdpAttached())
    }
}
