import Foundation
import Testing

/// A real nginx terminating TLS (1.2 and 1.3) with HTTP/2 and HTTP/1.1 on port 443 inside a namespace; its access
/// log is the ground truth. nginx cannot write a TLS key log, so these tests use the client's (curl's
/// SSLKEYLOGFILE): the same format and the same secrets an edge proxy logs (the lab uses the proxy's own log).
final class TLSNginx {
    let dir: String
    let process: BackgroundProcess
    var accessLog: String { dir + "/access.log" }

    init(namespace: String, address: String) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("statetap-tls-nginx-\(UUID().uuidString)").path
        let root = dir + "/www"
        try FileManager.default.createDirectory(atPath: root + "/assets", withIntermediateDirectories: true)
        // Larger than one TLS record, so responses span records and segments.
        try String(repeating: "statetap edge object\n", count: 2000).write(toFile: root + "/a.txt", atomically: true, encoding: .utf8)
        try "body { color: red }\n".write(toFile: root + "/assets/site.css", atomically: true, encoding: .utf8)
        try String(repeating: "console.log('x');\n", count: 500).write(toFile: root + "/assets/app.js", atomically: true, encoding: .utf8)
        let openssl = try sh(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/key.pem",
                              "-out", dir + "/cert.pem", "-days", "2", "-subj", "/CN=edge.lab",
                              "-addext", "subjectAltName=DNS:edge.lab"], timeout: 30)
        guard openssl.status == 0 else { throw VethLab.LabError(message: "openssl req: \(openssl.stderr)") }
        let conf = """
            daemon off;
            master_process off;
            user root;
            worker_processes 1;
            pid \(dir)/nginx.pid;
            error_log \(dir)/error.log;
            events { worker_connections 64; }
            http {
                log_format lines '$request_method https://$host$request_uri $status';
                access_log \(dir)/access.log lines;
                client_body_temp_path \(dir)/body; proxy_temp_path \(dir)/proxy; fastcgi_temp_path \(dir)/fcgi;
                uwsgi_temp_path \(dir)/uwsgi; scgi_temp_path \(dir)/scgi;
                server {
                    listen \(address):443 ssl http2;
                    ssl_protocols TLSv1.2 TLSv1.3;
                    ssl_certificate \(dir)/cert.pem;
                    ssl_certificate_key \(dir)/key.pem;
                    root \(root);
                    location / { add_header Cache-Control "public, max-age=600"; }
                }
            }
            """
        try conf.write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
        process = BackgroundProcess(["ip", "netns", "exec", namespace, "nginx", "-p", dir, "-c", dir + "/nginx.conf"])
        try process.start()
    }

    func requests() -> [String] {
        ((try? String(contentsOfFile: accessLog, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func stop() {
        process.signal(SIGTERM)
        _ = process.wait(timeout: 2, expectKill: true)
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// One capture of a TapLab's mirror with a followed key log, and what it wrote.
private struct HTTPSRun {
    var events: [[String: Any]] = []
    var summary: [String: Any] = [:]
    var logged: [String] = []

    var webLinks: [String] {
        events.filter { $0["kind"] as? String == "web_link" }.map {
            "\($0["method"] as? String ?? "?") \($0["url"] as? String ?? "?") \(($0["status"] as? Int).map(String.init) ?? "-")"
        }
    }
    var serverNames: [String] { events.filter { $0["kind"] as? String == "server_name" }.compactMap { $0["sni"] as? String } }
    func https(_ key: String) -> Int { ((summary["https"] as? [String: Any])?[key] as? Int) ?? -1 }
}

/// Runs curl commands (`clients`: extra curl arguments each) in the client namespace against a TLS nginx while
/// statetap captures the mirror, following `keylog`; `between` runs after the clients, before the capture stops.
private func httpsRun(keyWait: Double = 5, clients: [[String]], curlKeys: String, followed: String,
                      between: () throws -> Void = {}) throws -> HTTPSRun {
    let lab = try TapLab()
    defer { lab.remove() }
    let nginx = try TLSNginx(namespace: lab.nsS, address: lab.serverAddress)
    defer { nginx.stop() }
    let events = FileManager.default.temporaryDirectory.appendingPathComponent("statetap-events-\(UUID().uuidString).jsonl").path
    defer { try? FileManager.default.removeItem(atPath: events) }
    // nginx first (a probe on its own key log: not the followed file).
    var up = false
    for _ in 0..<100 where !up {
        up = (try? sh(["ip", "netns", "exec", lab.nsC, "curl", "-sk", "-o", "/dev/null", "-m", "2", "--resolve",
                       "edge.lab:443:\(lab.serverAddress)", "https://edge.lab/a.txt"]))?.status == 0
        if !up { usleep(100_000) }
    }
    try #require(up, "nginx did not answer: \((try? String(contentsOfFile: nginx.dir + "/error.log", encoding: .utf8)) ?? "")")
    let probes = nginx.requests().count
    let capture = BackgroundProcess(["ip", "netns", "exec", lab.nsT, statetapBinary, "capture", "-i", "rt0",
                                     "--stats-interval", "0", "--json", "--events", "jsonl", "--events-out", events,
                                     "--tls-keylog", followed, "--tls-key-wait", String(keyWait)])
    try capture.start()
    defer { capture.signal(SIGKILL) }
    let deadline = Date().addingTimeInterval(30)
    while !capture.stderrSoFar.contains("capturing on"), capture.isRunning, Date() < deadline { usleep(50_000) }
    try #require(capture.stderrSoFar.contains("capturing on"), "capture did not start: \(capture.stderrSoFar)")
    for args in clients {
        let r = try sh(["env", "SSLKEYLOGFILE=\(curlKeys)", "ip", "netns", "exec", lab.nsC, "curl", "-sk",
                        "--resolve", "edge.lab:443:\(lab.serverAddress)"] + args, timeout: 30)
        #expect(r.status == 0, "curl \(args): \(r.stderr)")
    }
    try between()
    usleep(700_000)
    capture.signal(SIGINT)
    let result = capture.wait(timeout: 30)
    #expect(result.status == 0, "\(result.stderr)")
    var run = HTTPSRun()
    run.logged = Array(nginx.requests().dropFirst(probes))
    for line in ((try? String(contentsOfFile: events, encoding: .utf8)) ?? "").split(separator: "\n") {
        if let e = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] { run.events.append(e) }
    }
    run.summary = (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]) ?? [:]
    #expect(!run.summary.isEmpty, "no JSON summary: \(result.stdout.prefix(500)) \(result.stderr.suffix(500))")
    // The secrets never reach the capture's own output.
    let secrets = ((try? String(contentsOfFile: curlKeys, encoding: .utf8)) ?? "").split(separator: "\n")
        .compactMap { $0.split(separator: " ").last.map(String.init) }
    for s in secrets.prefix(8) {
        #expect(!result.stderr.contains(s) && !result.stdout.contains(s), "a secret was printed")
    }
    return run
}

private func temporary(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("statetap-\(name)-\(UUID().uuidString)").path
}

private let urls = ["https://edge.lab/a.txt", "https://edge.lab/assets/site.css", "https://edge.lab/assets/app.js?v=2",
                    "https://edge.lab/missing.png"]
private func fetch(_ extra: [String], _ list: [String] = urls) -> [String] {
    extra + list.flatMap { ["-o", "/dev/null", $0] }
}

@Suite("Real HTTPS: curl and a TLS nginx through a mirrored TAP, decrypted with a followed key log", .serialized,
       .enabled(if: isRoot, "needs root: namespaces, tc, XDP and AF_XDP"))
struct HTTPSTrafficTests {
    @Test("h2 and HTTP/1.1 over TLS 1.3 (AES-128-GCM, AES-256-GCM, ChaCha20) and TLS 1.2 (GCM, ChaCha20): events equal nginx's log")
    func eventsEqualAccessLog() throws {
        let keys = temporary("keys")
        _ = FileManager.default.createFile(atPath: keys, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: keys) }
        let run = try httpsRun(clients: [
            fetch(["--http2", "--tls13-ciphers", "TLS_AES_128_GCM_SHA256"]),
            fetch(["--http2", "--tls13-ciphers", "TLS_AES_256_GCM_SHA384"]),
            fetch(["--http2", "--tls13-ciphers", "TLS_CHACHA20_POLY1305_SHA256"]),
            fetch(["--http1.1"]),
            fetch(["--http2", "--tls-max", "1.2", "--ciphers", "ECDHE-RSA-AES256-GCM-SHA384"]),
            fetch(["--http1.1", "--tls-max", "1.2", "--ciphers", "ECDHE-RSA-CHACHA20-POLY1305"]),
            fetch(["--http2", "-I"], ["https://edge.lab/a.txt"]),
        ], curlKeys: keys, followed: keys)
        #expect(run.logged.count == 25)
        #expect(run.webLinks.sorted() == run.logged.sorted(), "events \(run.webLinks.sorted())\naccess log \(run.logged.sorted())")
        #expect(run.https("connections_decrypted") == 7)
        #expect(run.https("tls13") == 5)
        #expect(run.https("tls12") == 2)
        #expect(run.https("authentication_failures") == 0)
        #expect(run.https("keys_never_came") == 0)
        let h2 = run.events.filter { $0["kind"] as? String == "web_link" && $0["alpn"] as? String == "h2" }
        #expect(h2.count == 17)
        #expect(h2.allSatisfy { $0["transport"] as? String == "tls" && $0["version"] as? String == "HTTP/2" })
        let cacheable = run.events.first { $0["url"] as? String == "https://edge.lab/a.txt" }
        #expect(cacheable?["cacheable"] as? Bool == true)
        #expect(cacheable?["cache_control"] as? String == "public, max-age=600")
    }

    @Test("secrets that arrive after the connection ended are honoured (its records were held)")
    func lateKeys() throws {
        let curlKeys = temporary("curl-keys"), followed = temporary("followed")
        _ = FileManager.default.createFile(atPath: followed, contents: nil)
        defer { for f in [curlKeys, followed] { try? FileManager.default.removeItem(atPath: f) } }
        let run = try httpsRun(keyWait: 20, clients: [fetch(["--http2"]), fetch(["--http1.1"])],
                               curlKeys: curlKeys, followed: followed) {
            // The connections are over; their secrets come a second later, as a slow key shipper would bring them.
            sleep(1)
            let lines = try String(contentsOfFile: curlKeys, encoding: .utf8)
            let h = try #require(FileHandle(forWritingAtPath: followed))
            h.seekToEndOfFile()
            h.write(Data(lines.utf8))
            try h.close()
            sleep(1)
        }
        #expect(run.webLinks.sorted() == run.logged.sorted(), "events \(run.webLinks.sorted())\naccess log \(run.logged.sorted())")
        #expect(run.https("connections_held_for_keys") == 2)
        #expect(run.https("keys_late") == 2)
        #expect(run.https("keys_never_came") == 0)
    }

    @Test("a wrong secret fails authentication: counted, the connection keeps its server name, no web_link")
    func wrongKey() throws {
        let curlKeys = temporary("curl-keys"), followed = temporary("followed")
        defer { for f in [curlKeys, followed] { try? FileManager.default.removeItem(atPath: f) } }
        _ = FileManager.default.createFile(atPath: followed, contents: nil)
        let run = try httpsRun(keyWait: 20, clients: [fetch(["--http2"], ["https://edge.lab/a.txt"])], curlKeys: curlKeys,
                               followed: followed) {
            // Secrets for the connection's client random that are not its secrets: every hex digit of each changed.
            let lines = try String(contentsOfFile: curlKeys, encoding: .utf8).split(separator: "\n").map { line in
                let f = line.split(separator: " ")
                let rotated = String(f[2].map { c -> Character in
                    let digits = Array("0123456789abcdef")
                    return digits[(digits.firstIndex(of: c)! + 1) % 16]
                })
                return "\(f[0]) \(f[1]) \(rotated)\n"
            }
            try lines.joined().write(toFile: followed, atomically: false, encoding: .utf8)
            sleep(1)
        }
        #expect(run.webLinks.isEmpty, "\(run.webLinks)")
        #expect(run.serverNames == ["edge.lab"])
        #expect(run.https("authentication_failures") == 1)
    }

    @Test("secrets that never come: the connection waits --tls-key-wait, is counted, keeps its server name")
    func keysNeverCome() throws {
        let curlKeys = temporary("curl-keys"), followed = temporary("followed")
        _ = FileManager.default.createFile(atPath: followed, contents: nil)
        defer { for f in [curlKeys, followed] { try? FileManager.default.removeItem(atPath: f) } }
        let run = try httpsRun(keyWait: 0.5, clients: [fetch(["--http2"], ["https://edge.lab/a.txt"])],
                               curlKeys: curlKeys, followed: followed) { sleep(1) }
        #expect(run.webLinks.isEmpty, "\(run.webLinks)")
        #expect(run.serverNames == ["edge.lab"])
        #expect(run.https("keys_never_came") == 1)
        #expect(run.https("connections_decrypted") == 0)
    }
}
