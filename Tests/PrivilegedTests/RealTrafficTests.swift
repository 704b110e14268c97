import Foundation
import Testing

/// Client, server and tap namespaces: curl in `c` talks to a real nginx in `s` over a veth pair; tc mirrors the
/// server side's traffic (both directions) to a second veth whose other end, in `t`, statetap captures with
/// AF_XDP, as a passive network TAP would. Removed in `remove()` / deinit.
final class TapLab {
    nonisolated(unsafe) private static var counter = 0
    let nsC: String, nsS: String, nsT: String
    let clientAddress: String, serverAddress: String
    private var removed = false

    init() throws {
        Self.counter += 1
        let tag = "\(getpid() % 100000)-\(Self.counter)"
        nsC = "statetap-r\(tag)-c"; nsS = "statetap-r\(tag)-s"; nsT = "statetap-r\(tag)-t"
        let subnet = 10 + Self.counter % 200
        clientAddress = "10.88.\(subnet).1"; serverAddress = "10.88.\(subnet).2"
        let steps: [[String]] = [
            ["ip", "netns", "add", nsC], ["ip", "netns", "add", nsS], ["ip", "netns", "add", nsT],
            ["ip", "link", "add", "rc0", "netns", nsC, "type", "veth", "peer", "name", "rs0", "netns", nsS],
            ["ip", "link", "add", "rm0", "numrxqueues", "1", "numtxqueues", "1", "netns", nsS, "type", "veth", "peer",
             "name", "rt0", "numrxqueues", "1", "numtxqueues", "1", "netns", nsT],
            ["ip", "-n", nsC, "addr", "add", "\(clientAddress)/24", "dev", "rc0"],
            ["ip", "-n", nsS, "addr", "add", "\(serverAddress)/24", "dev", "rs0"],
            ["ip", "-n", nsC, "link", "set", "rc0", "up"], ["ip", "-n", nsS, "link", "set", "rs0", "up"],
            ["ip", "-n", nsS, "link", "set", "rm0", "up"], ["ip", "-n", nsT, "link", "set", "rt0", "up"],
            ["ip", "-n", nsC, "link", "set", "lo", "up"], ["ip", "-n", nsS, "link", "set", "lo", "up"],
            // The TAP: both directions of rs0 copied out of rm0.
            ["ip", "netns", "exec", nsS, "tc", "qdisc", "add", "dev", "rs0", "clsact"],
            ["ip", "netns", "exec", nsS, "tc", "filter", "add", "dev", "rs0", "ingress", "protocol", "all", "u32", "match",
             "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", "rm0"],
            ["ip", "netns", "exec", nsS, "tc", "filter", "add", "dev", "rs0", "egress", "protocol", "all", "u32", "match",
             "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", "rm0"],
        ]
        for step in steps {
            let r = try sh(step, timeout: 10)
            guard r.status == 0 else {
                remove()
                throw VethLab.LabError(message: "\(step.joined(separator: " ")) failed: \(r.stderr)")
            }
        }
    }

    func remove() {
        guard !removed else { return }
        removed = true
        for ns in [nsC, nsS, nsT] { _ = try? sh(["ip", "netns", "del", ns], timeout: 10) }
    }

    deinit { remove() }
}

/// A real nginx serving a folder on port 80 inside a namespace; its access log is the ground truth.
final class Nginx {
    let dir: String
    let process: BackgroundProcess
    var accessLog: String { dir + "/access.log" }

    init(namespace: String, address: String) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("statetap-nginx-\(UUID().uuidString)").path
        let root = dir + "/www"
        try FileManager.default.createDirectory(atPath: root + "/assets", withIntermediateDirectories: true)
        try String(repeating: "statetap edge object\n", count: 200).write(toFile: root + "/a.txt", atomically: true, encoding: .utf8)
        try "body { color: red }\n".write(toFile: root + "/assets/site.css", atomically: true, encoding: .utf8)
        try String(repeating: "console.log('x');\n", count: 500).write(toFile: root + "/assets/app.js", atomically: true, encoding: .utf8)
        let conf = """
            daemon off;
            master_process off;
            user root;
            worker_processes 1;
            pid \(dir)/nginx.pid;
            error_log \(dir)/error.log;
            events { worker_connections 64; }
            http {
                log_format lines '$request_method http://$host$request_uri $status';
                access_log \(dir)/access.log lines;
                client_body_temp_path \(dir)/body; proxy_temp_path \(dir)/proxy; fastcgi_temp_path \(dir)/fcgi;
                uwsgi_temp_path \(dir)/uwsgi; scgi_temp_path \(dir)/scgi;
                gzip on; gzip_types text/plain application/javascript text/css; gzip_min_length 1;
                keepalive_requests 100;
                server {
                    listen \(address):80;
                    root \(root);
                    location / { add_header Cache-Control "public, max-age=600"; }
                }
            }
            """
        try conf.write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
        process = BackgroundProcess(["ip", "netns", "exec", namespace, "nginx", "-p", dir, "-c", dir + "/nginx.conf"])
        try process.start()
    }

    /// The access log as (method, url, status) lines.
    func requests() -> [String] {
        ((try? String(contentsOfFile: accessLog, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func stop() {
        // Single-process nginx may run with the signals the test runner blocks: TERM, then KILL after a grace
        // period (the access log is written per request, so nothing is lost).
        process.signal(SIGTERM)
        _ = process.wait(timeout: 2, expectKill: true)
        try? FileManager.default.removeItem(atPath: dir)
    }
}

@Suite("Real traffic: curl and nginx through a mirrored TAP, captured live", .serialized,
       .enabled(if: isRoot, "needs root: namespaces, tc, XDP and AF_XDP"))
struct RealTrafficTests {
    @Test("the web_link events equal nginx's access log: keep-alive, pipelined, chunked (gzip), 404")
    func webLinksEqualAccessLog() throws {
        let lab = try TapLab()
        defer { lab.remove() }
        let nginx = try Nginx(namespace: lab.nsS, address: lab.serverAddress)
        defer { nginx.stop() }
        let events = FileManager.default.temporaryDirectory.appendingPathComponent("statetap-events-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: events) }
        let capture = BackgroundProcess(["ip", "netns", "exec", lab.nsT, statetapBinary, "capture", "-i", "rt0",
                                         "--stats-interval", "0", "--json", "--events", "jsonl", "--events-out", events])
        try capture.start()
        defer { capture.signal(SIGKILL) }
        let deadline = Date().addingTimeInterval(30)
        while !capture.stderrSoFar.contains("capturing on"), capture.isRunning, Date() < deadline { usleep(50_000) }
        try #require(capture.stderrSoFar.contains("capturing on"), "capture did not start: \(capture.stderrSoFar)")
        // nginx listening?
        var up = false
        for _ in 0..<100 where !up {
            up = (try? sh(["ip", "netns", "exec", lab.nsC, "curl", "-s", "-o", "/dev/null", "-m", "2",
                           "http://\(lab.serverAddress)/a.txt"]))?.status == 0
            if !up { usleep(100_000) }
        }
        try #require(up, "nginx did not answer: \((try? String(contentsOfFile: nginx.dir + "/error.log", encoding: .utf8)) ?? "")")
        let base = "http://\(lab.serverAddress)"
        // Keep-alive: several requests on one connection; gzip makes nginx answer chunked; a 404; a HEAD.
        let curl = try sh(["ip", "netns", "exec", lab.nsC, "curl", "-s", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
                           "-o", "/dev/null", "-H", "Accept-Encoding: gzip", "\(base)/a.txt", "\(base)/assets/site.css",
                           "\(base)/assets/app.js?v=2", "\(base)/missing.png"], timeout: 30)
        #expect(curl.status == 0, "\(curl.stderr)")
        _ = try sh(["ip", "netns", "exec", lab.nsC, "curl", "-s", "-I", "-o", "/dev/null", "\(base)/a.txt"], timeout: 30)
        // Pipelined: three requests in one write on one connection.
        let pipelined = """
            import socket, sys
            s = socket.create_connection((sys.argv[1], 80), timeout=5)
            req = ''.join(f'GET {p} HTTP/1.1\\r\\nHost: {sys.argv[1]}\\r\\n\\r\\n' for p in ['/a.txt', '/assets/site.css', '/nope'])
            s.sendall((req + f'GET /assets/app.js HTTP/1.1\\r\\nHost: {sys.argv[1]}\\r\\nConnection: close\\r\\n\\r\\n').encode())
            data = b''
            while True:
                chunk = s.recv(65536)
                if not chunk: break
                data += chunk
            print(data.count(b'HTTP/1.1 '))
            """
        let p = try sh(["ip", "netns", "exec", lab.nsC, "python3", "-c", pipelined, lab.serverAddress], timeout: 30)
        #expect(p.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "4", "\(p.stdout) \(p.stderr)")
        usleep(700_000)
        capture.signal(SIGINT)
        let result = capture.wait(timeout: 30)
        #expect(result.status == 0, "\(result.stderr)")

        let logged = nginx.requests()
        let lines = ((try? String(contentsOfFile: events, encoding: .utf8)) ?? "").split(separator: "\n")
        var seen: [String] = []
        for line in lines {
            guard let e = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  e["kind"] as? String == "web_link" else { continue }
            let status = (e["status"] as? Int).map(String.init) ?? "-"
            seen.append("\(e["method"] as? String ?? "?") \(e["url"] as? String ?? "?") \(status)")
        }
        // The first curl probe (waiting for nginx) may have happened before statetap captured: compare the rest.
        #expect(logged.count >= 10)
        #expect(seen.sorted() == logged.sorted(), "events \(seen.sorted())\naccess log \(logged.sorted())")
    }

    @Test("QUIC Initials from a real client (aioquic, v1 and v2) give their server name and ALPN")
    func quicClient() throws {
        let lab = try TapLab()
        defer { lab.remove() }
        let events = FileManager.default.temporaryDirectory.appendingPathComponent("statetap-events-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: events) }
        // UDP 4433 is not steered by default: the v2 client uses it, so the port list is configured.
        let capture = BackgroundProcess(["ip", "netns", "exec", lab.nsT, statetapBinary, "capture", "-i", "rt0",
                                         "--udp-ports", "443,4433", "--stats-interval", "0", "--json",
                                         "--events", "jsonl", "--events-out", events])
        try capture.start()
        defer { capture.signal(SIGKILL) }
        let deadline = Date().addingTimeInterval(30)
        while !capture.stderrSoFar.contains("capturing on"), capture.isRunning, Date() < deadline { usleep(50_000) }
        try #require(capture.stderrSoFar.contains("capturing on"), "capture did not start: \(capture.stderrSoFar)")
        // No server: the client's Initials (and their retransmissions) are all that is needed.
        let client = """
            import asyncio, sys
            from aioquic.asyncio import connect
            from aioquic.quic.configuration import QuicConfiguration
            from aioquic.quic.packet import QuicProtocolVersion
            async def main(host, port, name, alpn, version):
                c = QuicConfiguration(is_client=True, alpn_protocols=[alpn], server_name=name)
                c.supported_versions = [QuicProtocolVersion.VERSION_2 if version == "2" else QuicProtocolVersion.VERSION_1]
                try:
                    async with connect(host, int(port), configuration=c, wait_connected=True):
                        pass
                except Exception:
                    pass
            try:
                asyncio.run(asyncio.wait_for(main(*sys.argv[1:]), 1.5))
            except Exception:
                pass
            print("sent")
            """
        for (port, name, alpn, version) in [("443", "edge-one.example", "h3", "1"), ("4433", "edge-two.example", "hq-interop", "2")] {
            let r = try sh(["ip", "netns", "exec", lab.nsC, "python3", "-c", client, lab.serverAddress, port, name, alpn, version],
                           timeout: 30)
            try #require(r.stdout.contains("sent"), "aioquic client failed (is aioquic installed?): \(r.stderr)")
        }
        usleep(500_000)
        capture.signal(SIGINT)
        let result = capture.wait(timeout: 30)
        #expect(result.status == 0, "\(result.stderr)")
        let lines = ((try? String(contentsOfFile: events, encoding: .utf8)) ?? "").split(separator: "\n")
        let names = try lines.compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["kind"] as? String == "server_name" }
        #expect(names.count == 2, "one event per connection, retransmitted Initials included: \(names)")
        let one = names.first { $0["sni"] as? String == "edge-one.example" }
        let two = names.first { $0["sni"] as? String == "edge-two.example" }
        #expect(one?["transport"] as? String == "quic" && one?["alpn"] as? [String] == ["h3"])
        #expect(one?["quic_version"] as? String == "0x00000001")
        #expect((one?["server"] as? String) == "\(lab.serverAddress):443")
        #expect((one?["client"] as? String)?.hasPrefix(lab.clientAddress + ":") == true)
        #expect(two?["alpn"] as? [String] == ["hq-interop"] && two?["quic_version"] as? String == "0x6b3343cf")
    }
}
