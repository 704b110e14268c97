import Foundation
import Glibc
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import MigrationAPI
@testable import Migration

/// RFC 3339 times as the API reads them: (text, seconds since the epoch, or nil when it must be refused).
private let rfc3339Cases: [(String, Double?)] = [
    ("2030-01-01T00:00:00Z", 1_893_456_000),
    ("2030-01-01t00:00:00z", 1_893_456_000),  // RFC 3339 §5.6: T and Z in either case
    ("2030-01-01T00:00:00.5Z", 1_893_456_000.5),
    ("2030-01-01T00:00:00.123456789Z", 1_893_456_000.123456789),
    // More than 9 digits: nanoseconds kept, the rest read (digits only) and dropped.
    ("2030-01-01T00:00:00.9999999999Z", 1_893_456_000.999999999),
    ("2030-01-01T00:00:00." + String(repeating: "9", count: 40) + "Z", 1_893_456_000.999999999),
    ("2030-01-01T02:30:00+02:30", 1_893_456_000),
    ("2029-12-31T19:00:00-05:00", 1_893_456_000),
    ("2028-02-29T00:00:00Z", 1_835_395_200),  // a leap year
    ("2000-02-29T00:00:00Z", 951_782_400),  // divisible by 400
    ("2016-12-31T23:59:60Z", 1_483_228_799.999999999),  // a leap second: the minute's last instant
    ("1970-01-01T00:00:00Z", 0),
    ("2030-01-01T00:00:00", nil),  // no offset
    ("2030-01-01 00:00:00Z", nil),
    ("2030-01-01T00:00:00.Z", nil),  // a dot without digits
    ("2030-01-01T00:00:00.12a4Z", nil),
    ("2029-02-29T00:00:00Z", nil),  // not a leap year
    ("1900-02-29T00:00:00Z", nil),  // divisible by 100, not 400
    ("2030-04-31T00:00:00Z", nil),
    ("2030-13-01T00:00:00Z", nil),
    ("2030-00-01T00:00:00Z", nil),
    ("2030-01-00T00:00:00Z", nil),
    ("2030-01-01T24:00:00Z", nil),
    ("2030-01-01T00:60:00Z", nil),
    ("2030-01-01T00:00:61Z", nil),
    ("2030-01-01T00:00:00+24:00", nil),
    ("2030-01-01T00:00:00+0200", nil),
    ("2030-01-01T00:00:00Zjunk", nil),
    ("+2030-01-01T00:00:00Z", nil),
    ("２０３０-01-01T00:00:00Z", nil),  // full-width digits are not digits here
    ("", nil),
    ("2030-01-01T00:00:00." + String(repeating: "9", count: 200) + "Z", 1_893_456_000.999999999),
    ("2030-01-01T00:00:00." + String(repeating: "9", count: 300) + "Z", nil),  // over the 256-byte bound
]

@Suite("Hostile input to the control plane")
struct HostileInputTests {
    @Test("RFC 3339 times: every field range-checked, long fractions read to the nanosecond, nothing traps",
          arguments: rfc3339Cases.indices)
    func rfc3339(_ index: Int) {
        let (text, expected) = rfc3339Cases[index]
        let got = parseRFC3339(text)?.timeIntervalSince1970
        if let expected {
            #expect(got.map { abs($0 - expected) < 1e-6 } == true, "\(text): \(got.map { String($0) } ?? "refused"), want \(expected)")
        } else {
            #expect(got == nil, "\(text) must be refused, was read as \(got ?? 0)")
        }
    }

    @Test("bodies the decoder would half-read: a key twice in one object is refused, not one of them kept")
    func duplicateKeys() async throws {
        let cp = makeControlPlane(agent: "http://127.0.0.1:9")
        let app = Application(router: cp.router(), logger: quietLogger("test.app"))
        try await app.test(.router) { client in
            let twice = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth(),
                                                 body: json(#"{"device": "10.45.0.9", "to": "edge-b", "to": "edge-a"}"#))
            #expect(twice.status == .badRequest)
            #expect(twice.body.text.contains("the key 'to' appears twice"), "\(twice.body.text)")
            let nested = try await client.execute(uri: "/v1/notifications/cell-change", method: .post, headers: auth(),
                                                  body: json(#"{"hoStatus": 1, "srcEcgi": {"cellId": "cell-a"}, "trgEcgi": [{"cellId": "cell-b"}], "associateId": [{"type": 1, "value": "10.45.0.9", "type": 1}]}"#))
            #expect(nested.status == .badRequest && nested.body.text.contains("'type' appears twice"), "\(nested.body.text)")
            // The same key in different objects, and keys inside strings, are fine.
            let fine = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth(),
                                                body: json(#"{"device": "10.45.0.9", "from": "x\"to\":", "to": "edge-b"}"#))
            #expect(fine.status == .accepted, "\(fine.status) \(fine.body.text)")
        }
        #expect(JSONDuplicateKeys.first(in: Array(#"[{"a": 1}, {"a": 2}, {"b": {"a": 3}}]"#.utf8)) == nil)
        #expect(JSONDuplicateKeys.first(in: Array(#"{"a": {"b": 1}, "c": [1, {"d": 2, "d": 3}]}"#.utf8)) == "d")
        #expect(JSONDuplicateKeys.first(in: Array(#"{"a\"": 1, "a": 2}"#.utf8)) == nil)
        #expect(JSONDuplicateKeys.first(in: Array(#"{"unterminated": "x"#.utf8)) == nil, "left to the decoder")
    }

    @Test("edges and cells: names bounded, agents that would get the token on a metadata address refused")
    func edgesAndCells() async throws {
        let cp = makeControlPlane(agent: "http://127.0.0.1:9")
        let app = Application(router: cp.router(), logger: quietLogger("test.app"))
        try await app.test(.router) { client in
            for (agent, ok) in [("http://169.254.169.254/", false), ("http://[fe80::1]:8080", false), ("http://0.0.0.0:80", false),
                                ("http://224.0.0.1/", false), ("http://[::ffff:169.254.169.254]/", false), ("ftp://10.0.0.1/", false),
                                ("http://10.20.0.7:8080", true), ("https://localhost:8443", true), ("http://[2001:db8::7]:80", true),
                                // A name is resolved when its edge is configured: one that does not resolve is refused.
                                ("https://agent-b.invalid", false)] {
                let r = try await client.execute(uri: "/v1/edges/edge-c", method: .put, headers: auth(),
                                                 body: json(#"{"agent": "\#(agent)"}"#))
                #expect((r.status == .ok) == ok, "\(agent): \(r.status) \(r.body.text)")
            }
            let long = String(repeating: "e", count: 65)
            let longName = try await client.execute(uri: "/v1/edges/\(long)", method: .put, headers: auth(),
                                                    body: json(#"{"agent": "http://10.20.0.7:8080"}"#))
            #expect(longName.status == .badRequest && longName.body.text.contains("must be 1 to 64"), "\(longName.body.text)")
            let badCell = try await client.execute(uri: "/v1/cells/cell%20one", method: .put, headers: auth(), body: json(#"{"edge": "edge-b"}"#))
            #expect(badCell.status == .badRequest, "\(badCell.body.text)")
            let cell = try await client.execute(uri: "/v1/cells/310-410:00af", method: .put, headers: auth(), body: json(#"{"edge": "edge-b"}"#))
            #expect(cell.status == .ok, "\(cell.body.text)")
        }
        var config = EdgeConfiguration(edges: (0...EdgeConfiguration.maxEdges).map { EdgeNode(name: "e\($0)", agent: "http://10.0.0.1:1") })
        config.cells = ["a b": "e0"]
        let problems = config.problems()
        #expect(problems.contains { $0.contains("1025 edges: at most 1024") } && problems.contains { $0.contains("cell id 'a b'") }, "\(problems)")
    }

    @Test("agents only where the operator allows them: schemes, networks, and names resolved and checked address by address")
    func agentPolicy() async throws {
        var policy = AgentPolicy()
        #expect(policy.allow(network: "10.20.0.0/16") == nil)
        #expect(policy.allow(network: "fd00::/8") == nil)
        #expect(policy.allow(network: "10.0.0.0/33")?.contains("0...32") == true)
        #expect(policy.allow(network: "ten/8")?.contains("not ADDRESS/LENGTH") == true)
        policy.schemes = ["https"]
        let cases: [(String, String?)] = [
            ("https://10.20.3.4:8443", nil),
            ("https://[fd00::7]/", nil),
            ("https://10.21.0.1/", "outside the agent networks"),
            ("http://10.20.3.4/", "not an allowed agent scheme"),
            ("https://169.254.169.254/", "link-local"),
            // localhost resolves to 127.0.0.1 (and perhaps ::1): outside 10.20/16 and fd00::/8.
            ("https://localhost:8443/", "outside the agent networks"),
            ("https://agent-b.invalid/", "could not be resolved"),
        ]
        for (url, problem) in cases {
            let found = await Migration.agentProblem(url, policy: policy)
            if let problem {
                #expect(found?.contains(problem) == true, "\(url): \(found ?? "allowed")")
            } else {
                #expect(found == nil, "\(url): \(found ?? "")")
            }
        }
        // The same through the API, and for an edges file.
        var c = controlPlaneConfiguration()
        c.agents = policy
        let cp = makeControlPlane(agent: "http://127.0.0.1:9", configuration: c)
        let app = Application(router: cp.router(), logger: quietLogger("test.app"))
        try await app.test(.router) { client in
            let refused = try await client.execute(uri: "/v1/edges/edge-c", method: .put, headers: auth(),
                                                   body: json(#"{"agent": "https://localhost:8443"}"#))
            #expect(refused.status == .unprocessableContent && refused.body.text.contains("outside the agent networks"), "\(refused.body.text)")
            let allowed = try await client.execute(uri: "/v1/edges/edge-c", method: .put, headers: auth(),
                                                   body: json(#"{"agent": "https://10.20.0.9:8443"}"#))
            #expect(allowed.status == .ok, "\(allowed.body.text)")
        }
        let file = EdgeConfiguration(edges: [EdgeNode(name: "a", agent: "https://10.20.0.1"), EdgeNode(name: "b", agent: "https://localhost")])
        let problems = edgeConfigurationProblems(file, policy: policy)
        #expect(problems.count == 1 && problems[0].contains("edge 'b'"), "\(problems)")
        #expect(edgeConfigurationProblems(file, policy: AgentPolicy()).isEmpty, "localhost is allowed by default")
    }

    @Test("errors cut what they echo: a 100 KB device comes back as 80 characters and its length, a 100 KB number not at all")
    func echoedValuesCut() async throws {
        let cp = makeControlPlane(agent: "http://127.0.0.1:9")
        let app = Application(router: cp.router(), logger: quietLogger("test.app"))
        try await app.test(.router) { client in
            let huge = String(repeating: "9", count: 100_000)
            let r = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth(),
                                             body: json(#"{"device": "\#(huge)", "to": "edge-b"}"#))
            #expect(r.status == .badRequest)
            #expect(r.body.text.count < 300 && r.body.text.contains("(100000 bytes)"), "\(r.body.text.prefix(300))")
            // A 100 KB number where a string belongs: what is wrong, in JSON's words, without the number.
            let number = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth(),
                                                  body: json(#"{"device": \#(huge), "to": "edge-b"}"#))
            #expect(number.status == .badRequest)
            #expect(number.body.text.contains("'device' should be a string, not a number") && number.body.text.count < 300,
                    "\(number.body.text.prefix(300))")
            let port = try await client.execute(uri: "/v1/notifications/mobility-procedure", method: .post, headers: auth(),
                                                body: json(#"{"mobilityStatus": 1, "targetAppInfo": {"commInterface": {"ipAddresses": [{"host": "10.0.0.1", "port": \#(huge)}]}}, "associateId": [{"type": 1, "value": "10.45.0.1"}]}"#))
            #expect(port.status == .badRequest)
            #expect(port.body.text.count < 400 && !port.body.text.contains(String(repeating: "9", count: 200)), "\(port.body.text.prefix(400))")
            let octal = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth(),
                                                 body: json(#"{"device": "010.000.000.001", "to": "edge-b"}"#))
            #expect(octal.status == .badRequest, "an ambiguous dotted quad is refused: \(octal.body.text)")
        }
    }

    @Test("times are written as they are read: proleptic Gregorian, to the millisecond, truncated")
    func rfc3339Format() {
        let cases: [(Double, String)] = [
            (0, "1970-01-01T00:00:00.000Z"), (1_893_456_000.9999, "2030-01-01T00:00:00.999Z"),
            (951_782_400, "2000-02-29T00:00:00.000Z"), (-0.0005, "1969-12-31T23:59:59.999Z"),
            // Before 1582 (where Foundation's formatter switches to the Julian calendar), and year 0.
            (-30_137_011_200, "1014-12-31T00:00:00.000Z"), (-62_167_219_200, "0000-01-01T00:00:00.000Z"),
            (253_402_300_799.5, "9999-12-31T23:59:59.500Z"),
        ]
        for (t, text) in cases {
            #expect(MigrationAPI.rfc3339(Date(timeIntervalSince1970: t)) == text)
            #expect(parseRFC3339(text).map { abs($0.timeIntervalSince1970 - t) < 0.001 } == true, "\(text)")
        }
    }

    @Test("a deadline with a 40-digit fraction is a valid time: the migration is created, the process keeps answering")
    func longFractionDeadline() async throws {
        let cp = makeControlPlane(agent: "http://127.0.0.1:9")
        let app = Application(router: cp.router(), logger: quietLogger("test.app"))
        // Five minutes from now, to the second, then the fraction that trapped the old parser.
        let whole = Int(Date().timeIntervalSince1970) + 300
        let base = String(rfc3339Text(whole).dropLast())  // without its "Z"
        try await app.test(.router) { client in
            for digits in [10, 40, 60] {
                let deadline = base + "." + String(repeating: "9", count: digits) + "Z"
                let r = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth(),
                                                 body: json(#"{"device": "10.45.0.\#(digits)", "to": "edge-b", "deadline": "\#(deadline)"}"#))
                #expect(r.status == .created || r.status == .accepted, "\(digits) digits: \(r.status) \(r.body.text)")
                let view = try JSONDecoder().decode([String: JSONValue].self, from: Data(r.body.readableBytesView))
                if case .string(let stored)? = view["deadline"] {
                    let t = try #require(parseRFC3339(stored)?.timeIntervalSince1970)
                    #expect(abs(t - (Double(whole) + 0.999)) < 0.0015, "stored as \(stored)")
                } else {
                    Issue.record("no deadline in \(r.body.text)")
                }
            }
            let alive = try await client.execute(uri: "/metrics", method: .get, headers: auth())
            #expect(alive.status == .ok)
        }
    }
}

@Suite("Heavy signalling: bounded migrations in flight, one prober per unreachable agent")
struct MigrationFloodTests {
    /// A control plane whose destination agent refuses connections (port 9 on loopback: nothing listens).
    static func unreachable(limit: Int) -> (ControlPlane, Application<RouterResponder<BasicRequestContext>>) {
        var c = controlPlaneConfiguration()
        c.maxMigrationsInFlight = limit
        c.defaultDeadlineSeconds = 20
        let cp = makeControlPlane(agent: "http://127.0.0.1:9", configuration: c)
        return (cp, Application(router: cp.router(), logger: quietLogger("test.app")))
    }

    static func signal(_ device: String, to edge: String = "edge-b") -> ByteBuffer {
        json(#"{"device": "\#(device)", "to": "\#(edge)"}"#)
    }

    @Test("past --max-migrations a signal gets 429 with Retry-After, counted; a superseding one and room made are admitted")
    func inFlightLimit() async throws {
        let (cp, app) = Self.unreachable(limit: 3)
        defer { cp.shutdown() }
        try await app.test(.router) { client in
            var ids: [String] = []
            for i in 1...3 {
                let r = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth(), body: Self.signal("10.45.1.\(i)"))
                #expect(r.status == .accepted, "\(r.status) \(r.body.text)")
                let view = try JSONCoding.decoder.decode(MigrationView.self, from: Data(r.body.readableBytesView))
                ids.append(view.id)
            }
            for i in 4...20 {
                let r = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth(), body: Self.signal("10.45.1.\(i)"))
                #expect(r.status == .tooManyRequests, "signal \(i): \(r.status)")
                #expect(Int(r.headers[.retryAfter] ?? "") ?? 0 >= 1, "Retry-After: \(r.headers[.retryAfter] ?? "none")")
                #expect(r.body.text.contains("migrations are in flight"), "\(r.body.text)")
            }
            // The same signal again is the running migration; one to another edge supersedes it (no new room needed).
            let again = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth(), body: Self.signal("10.45.1.1"))
            #expect(again.status == .ok, "\(again.status) \(again.body.text)")
            let moved = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth(), body: Self.signal("10.45.1.1", to: "edge-a"))
            #expect(moved.status == .accepted, "\(moved.status) \(moved.body.text)")
            // A cancelled migration makes room.
            let cancel = try await client.execute(uri: "/v1/migrations/\(ids[1])", method: .delete, headers: auth())
            #expect(cancel.status == .ok)
            let admitted = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth(), body: Self.signal("10.45.1.30"))
            #expect(admitted.status == .accepted, "\(admitted.status) \(admitted.body.text)")
            let refused = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth(), body: Self.signal("10.45.1.31"))
            #expect(refused.status == .tooManyRequests)
            let metrics = try await client.execute(uri: "/metrics", method: .get, headers: auth())
            #expect(metrics.body.text.contains(#"statetap_migrations_refused_total{reason="in_flight_limit"} 18"#), "\(metrics.body.text)")
        }
    }

    @Test("migrations towards an agent that does not answer wait for one prober instead of each retrying")
    func oneProberPerAgent() async throws {
        let (cp, app) = Self.unreachable(limit: 100)
        defer { cp.shutdown() }
        try await app.test(.router) { client in
            for i in 1...40 {
                let r = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth(), body: Self.signal("10.45.2.\(i)"))
                #expect(r.status == .accepted)
            }
            // Retries back off 40 ms -> 200 ms (test settings): in 1.5 s, 40 migrations each retrying on its own would
            // make ~300 attempts; with one prober, those begun before the first failed (40 at most) and one probe per
            // wait (~10).
            try await Task.sleep(for: .milliseconds(1500))
            let attempts = cp.recentMigrations(limit: 100).reduce(0) { $0 + $1.transfer.attempts }
            #expect(attempts >= 3, "the agent is still being probed: \(attempts) attempts")
            #expect(attempts <= 40 + 25, "\(attempts) attempts: transfers retried on their own instead of waiting for the probe")
            #expect(cp.recentMigrations(limit: 100).allSatisfy { $0.status == .transferring })
        }
    }
}

@Suite("Slow clients: read deadlines and a connection cap, without a token", .serialized)
struct SlowClientTests {
    /// A TCP connection to 127.0.0.1:`port`.
    static func connectLoopback(_ port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard ok else { close(fd); throw TestFailure("connect: errno \(errno)") }
        return fd
    }

    static func send(_ fd: Int32, _ text: String) { _ = text.utf8CString.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) } }

    /// Whether the server closed `fd` within `milliseconds` (EOF or reset), reading and dropping what it sent.
    static func closedByServer(_ fd: Int32, within milliseconds: Int) -> Bool {
        readUntilClosed(fd, within: milliseconds) != nil
    }

    @Test("a request trickled a byte at a time is closed at the header deadline; the token holder still gets in")
    func trickle() async throws {
        var limits = ConnectionLimits()
        limits.headerSeconds = 1
        let statistics = ConnectionStatistics()
        let cp = makeControlPlane(agent: "http://127.0.0.1:9")
        try await withServer(cp.router(), limits: limits, statistics: statistics) { port in
            let fds = try (0..<4).map { _ in try Self.connectLoopback(port) }
            defer { fds.forEach { close($0) } }
            for fd in fds { Self.send(fd, "GET /metrics HTTP/1.1\r\nHo") }
            // A byte every 200 ms would keep a 30 s idle timeout from ever firing; bounded at 3 s here.
            var open = Set(fds)
            for _ in 0..<15 where !open.isEmpty {
                for fd in open { Self.send(fd, "s") }
                for fd in open where Self.closedByServer(fd, within: 50) { open.remove(fd) }
                try await Task.sleep(for: .milliseconds(150))
            }
            #expect(open.isEmpty, "\(open.count) trickling connection(s) still open after 3 s")
            #expect(statistics.headerTimeoutsClosed == 4)
            let r = try await http(.GET, "http://127.0.0.1:\(port)/metrics")
            #expect(r.status == 200)
        }
    }

    /// What the server sends on `fd` until it closes it (at most `milliseconds`).
    static func readUntilClosed(_ fd: Int32, within milliseconds: Int) -> String? {
        var left = milliseconds
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while left > 0 {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let step = min(left, 100)
            left -= step
            guard poll(&p, 1, Int32(step)) > 0 else { continue }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return String(decoding: received, as: UTF8.self) }
            received += buffer[0..<n]
        }
        return nil
    }

    @Test("a request the HTTP decoder cannot read gets the documented JSON error, counted, and the connection closes",
          arguments: [
              ("a NUL in a header", "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Probe: a\u{0}b\r\n\r\n", "character that HTTP does not allow"),
              ("a 100 KB header", "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Probe: " + String(repeating: "a", count: 100_000) + "\r\n\r\n",
               "larger than the server reads"),
              ("a bad Content-Length", "POST /v1/migrations HTTP/1.1\r\nHost: x\r\nContent-Length: 12x\r\n\r\n", "Content-Length"),
          ])
    func unreadableRequest(_ what: String, _ request: String, _ said: String) async throws {
        let statistics = ConnectionStatistics()
        let cp = makeControlPlane(agent: "http://127.0.0.1:9")
        try await withServer(cp.router(), statistics: statistics) { port in
            let fd = try Self.connectLoopback(port)
            defer { close(fd) }
            Self.send(fd, request)
            let answer = try #require(Self.readUntilClosed(fd, within: 5000), "\(what): the server did not close the connection in 5 s")
            let parts = answer.components(separatedBy: "\r\n\r\n")
            let head = parts[0].lowercased()
            #expect(head.hasPrefix("http/1.1 400"), "\(what): \(parts[0])")
            #expect(head.contains("content-type: application/json"), "\(what): \(parts[0])")
            #expect(head.contains("connection: close"), "\(what): \(parts[0])")
            let body = parts.count > 1 ? parts[1] : ""
            let error = try JSONDecoder().decode([String: String].self, from: Data(body.utf8))["error"]
            #expect(error?.contains(said) == true, "\(what): \(body)")
            #expect(answer.components(separatedBy: "HTTP/1.1 ").count == 2, "\(what): one response, not Hummingbird's as well: \(answer)")
            #expect(statistics.unreadableRequests == 1)
            // The server goes on answering.
            let r = try await http(.GET, "http://127.0.0.1:\(port)/metrics")
            #expect(r.status == 200)
        }
    }

    @Test("past the connection cap a new connection is closed at once, counted; room comes back as others close")
    func connectionCap() async throws {
        var limits = ConnectionLimits()
        limits.headerSeconds = 2
        limits.maxConnections = 5
        let statistics = ConnectionStatistics()
        let cp = makeControlPlane(agent: "http://127.0.0.1:9")
        try await withServer(cp.router(), limits: limits, statistics: statistics) { port in
            let idle = try (0..<5).map { _ in try Self.connectLoopback(port) }
            try await Task.sleep(for: .milliseconds(200))  // accepted and counted
            let extra = try Self.connectLoopback(port)
            #expect(Self.closedByServer(extra, within: 1000), "the sixth connection was not closed at once")
            close(extra)
            #expect(statistics.refusedConnections == 1)
            for _ in 0..<20 where statistics.openConnections != 5 { try await Task.sleep(for: .milliseconds(50)) }
            #expect(statistics.openConnections == 5, "the refused one is not counted open once closed")
            // The idle ones go at the header deadline; then there is room again.
            for fd in idle { #expect(Self.closedByServer(fd, within: 4000)); close(fd) }
            try await Task.sleep(for: .milliseconds(200))
            let r = try await http(.GET, "http://127.0.0.1:\(port)/metrics")
            #expect(r.status == 200)
            #expect(r.text.contains("statetap_api_connections_refused_total"), "the process's figures are in /metrics")
            #expect(statistics.headerTimeoutsClosed == 5)
        }
    }
}

/// `seconds` since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
private func rfc3339Text(_ seconds: Int) -> String {
    var t = time_t(seconds)
    var parts = tm()
    gmtime_r(&t, &parts)
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
}

/// Enough of JSON to read one field of a response.
private enum JSONValue: Decodable {
    case string(String), other
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        self = (try? c.decode(String.self)).map(JSONValue.string) ?? .other
    }
}

@Suite("Links from hostile traffic: the agent fetches them from its cache and nowhere else")
struct HostileLinkTests {
    @Test("an HTTPS link is fetched through the cache only when its host is a DNS name and its path absolute",
          arguments: [
              ("edge.lab", nil), ("edge.lab:8443", nil), ("CDN-1.Example.com.", nil), ("a.b-c.d", nil),
              ("x@10.0.0.5", "not a DNS name"), ("10.0.0.5", "an IP address"), ("10.0.0.5:443", "an IP address"),
              ("[::1]", "not a DNS name"), ("[::1]:443", "not a DNS name"), ("edge.lab/evil", "not a DNS name"),
              ("edge.lab:", "not a DNS name"), ("edge.lab:80x", "not a DNS name"), ("edge lab", "not a DNS name"),
              ("-edge.lab", "not a DNS name"), ("edge..lab", "not a DNS name"), ("", "not a DNS name"),
              ("edge.lab:443@10.0.0.5", "not a DNS name"), ("0x7f000001", "an IP address"), ("a.0x7f", "an IP address"),
          ] as [(String, String?)])
    func hostPattern(_ host: String, _ problem: String?) throws {
        let found = CacheTLSClients.hostProblem(host)
        if let problem {
            #expect(found?.contains(problem) == true, "\(host): \(found ?? "accepted")")
        } else {
            #expect(found == nil, "\(host): \(found ?? "")")
        }
    }

    @Test("the URL goes to the cache's port with the link's name; a relative path is refused")
    func requestURL() async throws {
        let clients = try CacheTLSClients(cacheURL: "https://127.0.0.1:8443", caFile: nil)
        let (url, _) = try clients.request(host: "Edge.Lab:443", path: "/a?b=1")
        #expect(url == "https://edge.lab:8443/a?b=1")
        #expect(throws: CacheTLSClients.TLSClientError.self) { try clients.request(host: "edge.lab", path: "@10.0.0.5/x") }
        #expect(throws: CacheTLSClients.TLSClientError.self) { try clients.request(host: "x@10.0.0.5", path: "/x") }
        await clients.shutdown()
    }
}
