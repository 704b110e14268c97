import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Extract
import Journal
import NIOCore
import Testing
@testable import Migration

/// A concrete request path for a route of the router (`{name}` parameters filled in).
func samplePath(_ route: String) -> String {
    route.split(separator: "/", omittingEmptySubsequences: false).map { part -> String in
        guard part.hasPrefix("{") else { return String(part) }
        return part == "{id}" && route.hasPrefix("/v1/devices") ? "10.45.0.9" : "sample-\(part.dropFirst().dropLast())"
    }.joined(separator: "/")
}

/// The control plane's router with a small body limit, and an agent whose agent URL is never reached.
private func controlPlaneApp(maxBody: Int = 1 << 20) -> (ControlPlane, Application<RouterResponder<BasicRequestContext>>) {
    var c = controlPlaneConfiguration()
    c.maxBodyBytes = maxBody
    let cp = makeControlPlane(agent: "http://127.0.0.1:9", configuration: c)
    return (cp, Application(router: cp.router(), logger: quietLogger("test.app")))
}

private func agentApp(maxBody: Int = 16 << 20) -> Application<RouterResponder<BasicRequestContext>> {
    var c = AgentConfiguration(token: testToken, cacheURL: "http://127.0.0.1:9")
    c.maxBodyBytes = maxBody
    let agent = Agent(configuration: c, journal: nil, log: quietLogger("test.agent"))
    return Application(router: agent.router(), logger: quietLogger("test.app"))
}

/// `{"error": "..."}` of an error response.
private func errorMessage(_ body: ByteBuffer) -> String {
    (try? JSONDecoder().decode([String: String].self, from: Data(body.readableBytesView)))?["error"] ?? "<not an error body: \(body.text)>"
}

@Suite("API: authentication and validation")
struct APITests {
    @Test("every route of both routers answers 401 with WWW-Authenticate: Bearer without the right token",
          arguments: ["control plane", "agent"])
    func everyRouteNeedsTheToken(_ which: String) async throws {
        let router = which == "agent"
            ? makeAgent(cache: "http://127.0.0.1:9").router()
            : makeControlPlane(agent: "http://127.0.0.1:9").router()
        let routes = router.routes.map { ($0.method, samplePath($0.path.description)) }
        #expect(routes.count >= 5)
        let app = Application(router: router, logger: quietLogger("test.app"))
        try await app.test(.router) { client in
            for (method, path) in routes {
                let attempts: [(String, HTTPFields)] = [
                    ("no token", [:]),
                    ("wrong token", [.authorization: "Bearer wrong-token-0123456789abcd"]),
                    ("token prefix", [.authorization: "Bearer \(testToken.dropLast())"]),
                    ("not bearer", [.authorization: "Basic \(Data("user:\(testToken)".utf8).base64EncodedString())"]),
                ]
                for (what, headers) in attempts {
                    let r = try await client.execute(uri: path, method: method, headers: headers, body: json("{}"))
                    #expect(r.status == .unauthorized, "\(method) \(path), \(what)")
                    #expect(r.headers[.wwwAuthenticate] == "Bearer", "\(method) \(path), \(what)")
                    #expect(errorMessage(r.body).contains("bearer token"), "\(method) \(path), \(what)")
                }
            }
            // And the right token gets through (whatever the route then says).
            let ok = try await client.execute(uri: "/metrics", method: .get, headers: auth())
            #expect(ok.status == .ok)
        }
    }

    @Test("malformed JSON: 400 naming the problem")
    func malformedJSON() async throws {
        let (_, app) = controlPlaneApp()
        try await app.test(.router) { client in
            let cases: [(String, String, String)] = [
                ("/v1/migrations", #"{"device": "10.45.0.9", "to": "edge-b""#, "not valid JSON"),
                ("/v1/migrations", #"{"device": "10.45.0.9"}"#, "missing field 'to'"),
                ("/v1/migrations", #"{"device": 7, "to": "edge-b"}"#, "'device' should be a string, not a number"),
                ("/v1/notifications/cell-change", #"{"hoStatus": 1, "associateId": [{"type": 1}]}"#,
                 "missing field 'associateId.[0].value'"),
                ("/v1/notifications/mobility-procedure", #"{"associateId": []}"#, "missing field 'mobilityStatus'"),
            ]
            for (path, body, problem) in cases {
                let r = try await client.execute(uri: path, method: .post, headers: auth(), body: json(body))
                #expect(r.status == .badRequest, "\(path) \(body)")
                #expect(errorMessage(r.body).contains(problem), "\(path) \(body): \(errorMessage(r.body))")
            }
            let edge = try await client.execute(uri: "/v1/edges/edge-c", method: .put, headers: auth(), body: json(#"{"agnet": "x"}"#))
            #expect(edge.status == .badRequest)
            #expect(errorMessage(edge.body).contains("missing field 'agent'"))
        }
    }

    @Test("unknown edges and cells: 422; unknown ids: 404; edges can be added and removed")
    func unknownThings() async throws {
        let (cp, app) = controlPlaneApp()
        try await app.test(.router) { client in
            let m = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth(),
                                             body: json(#"{"device": "10.45.0.9", "to": "edge-z"}"#))
            #expect(m.status == .unprocessableContent)
            #expect(errorMessage(m.body).contains("unknown destination edge 'edge-z'"))

            let cell = try await client.execute(uri: "/v1/cells/cell-z", method: .put, headers: auth(), body: json(#"{"edge": "edge-z"}"#))
            #expect(cell.status == .unprocessableContent)
            #expect(errorMessage(cell.body).contains("unknown edge 'edge-z'"))

            let badAgent = try await client.execute(uri: "/v1/edges/edge-c", method: .put, headers: auth(), body: json(#"{"agent": "ftp://x"}"#))
            #expect(badAgent.status == .unprocessableContent)

            let mecCell = try await client.execute(uri: "/v1/notifications/cell-change", method: .post, headers: auth(),
                                                   body: json(cellChange(hoStatus: "1").replacingOccurrences(of: "cell-b", with: "cell-z")))
            #expect(mecCell.status == .unprocessableContent)
            #expect(errorMessage(mecCell.body).contains("target cell 'cell-z' maps to no edge"))

            let mec021 = try await client.execute(uri: "/v1/notifications/mobility-procedure", method: .post, headers: auth(), body: json("""
                {"mobilityStatus": 1, "associateId": [{"type": 1, "value": "10.45.0.9"}],
                 "targetAppInfo": {"appInstanceId": "nowhere", "commInterface": {"ipAddresses": [{"host": "192.0.2.1", "port": 80}]}}}
                """))
            #expect(mec021.status == .unprocessableContent)

            for (method, path) in [(HTTPRequest.Method.get, "/v1/migrations/nope"), (.delete, "/v1/migrations/nope"),
                                   (.delete, "/v1/edges/nope"), (.get, "/v1/devices/10.1.2.3")]
            {
                let r = try await client.execute(uri: path, method: method, headers: auth())
                #expect(r.status == .notFound, "\(method) \(path)")
            }
            let progress = try await client.execute(uri: "/v1/migrations/nope/progress", method: .post, headers: auth(), body: json("""
                {"migration_id": "nope", "status": "ready", "progress": {"total": 0, "done": 0, "objects": 0, "bytes": 0,
                 "not_modified": 0, "failed": 0, "hosts_connected": 0, "skipped_uncacheable": 0}, "received_at_unix_ms": 1}
                """))
            #expect(progress.status == .notFound)

            let put = try await client.execute(uri: "/v1/edges/edge-c", method: .put, headers: auth(), body: json(#"{"agent": "http://192.0.2.3:9090"}"#))
            #expect(put.status == .ok)
            let cells = try await client.execute(uri: "/v1/cells/cell-c", method: .put, headers: auth(), body: json(#"{"edge": "edge-c"}"#))
            #expect(cells.status == .ok)
            #expect(cp.edgeConfiguration.cells["cell-c"] == "edge-c")
            let del = try await client.execute(uri: "/v1/edges/edge-c", method: .delete, headers: auth())
            #expect(del.status == .noContent)
            #expect(cp.edgeConfiguration.cells["cell-c"] == nil, "an edge's cells go with it")
        }
    }

    @Test("POST /v1/tls-keys: lines taken into the key store; bad lines named, never echoed; off without a store")
    func tlsKeys() async throws {
        let random = String(repeating: "ab", count: 32), secret = String(repeating: "5c", count: 32)
        let (_, off) = controlPlaneApp()
        try await off.test(.router) { client in
            let r = try await client.execute(uri: "/v1/tls-keys", method: .post, headers: auth(),
                                             body: ByteBuffer(string: "CLIENT_TRAFFIC_SECRET_0 \(random) \(secret)\n"))
            #expect(r.status == .notFound)
            #expect(errorMessage(r.body).contains("--tls-keylog"))
        }
        var c = controlPlaneConfiguration()
        c.maxBodyBytes = 4096
        let store = TLSKeyStore(clock: { 0 })
        c.tlsKeys = store
        let cp = makeControlPlane(agent: "http://127.0.0.1:9", configuration: c)
        let app = Application(router: cp.router(), logger: quietLogger("test.app"))
        try await app.test(.router) { client in
            let ok = try await client.execute(uri: "/v1/tls-keys", method: .post, headers: auth(), body: ByteBuffer(string: """
                # edge-a
                CLIENT_TRAFFIC_SECRET_0 \(random) \(secret)
                SERVER_TRAFFIC_SECRET_0 \(random) \(secret)
                SERVER_TRAFFIC_SECRET_0 \(random) 12\(secret)
                """))
            #expect(ok.status == .ok)
            let body = ok.body.text
            #expect(body.contains(#""accepted":2"#) && body.contains(#""rejected":1"#) && body.contains(#""ignored":1"#))
            #expect(body.contains("line 4"))
            #expect(!body.contains(secret))
            #expect(store.secrets(clientRandom: Array(repeating: 0xab, count: 32))?.serverTraffic == Array(repeating: 0x5c, count: 32))
            let bad = try await client.execute(uri: "/v1/tls-keys", method: .post, headers: auth(),
                                               body: ByteBuffer(string: "hello \(secret)"))
            #expect(bad.status == .badRequest)
            #expect(errorMessage(bad.body).contains("no key-log line accepted: line 1"))
            #expect(!errorMessage(bad.body).contains(secret))
            let big = try await client.execute(uri: "/v1/tls-keys", method: .post, headers: auth(),
                                               body: ByteBuffer(string: String(repeating: "# x\n", count: 2000)))
            #expect(big.status == .contentTooLarge)
            let unauthenticated = try await client.execute(uri: "/v1/tls-keys", method: .post,
                                                           body: ByteBuffer(string: "CLIENT_TRAFFIC_SECRET_0 \(random) \(secret)"))
            #expect(unauthenticated.status == .unauthorized)
        }
        #expect(store.counters.linesAccepted == 2)
    }

    @Test("bad device addresses: 400")
    func badDevice() async throws {
        let (_, app) = controlPlaneApp()
        try await app.test(.router) { client in
            let m = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth(),
                                             body: json(#"{"device": "10.45.0.999", "to": "edge-b"}"#))
            #expect(m.status == .badRequest)
            #expect(errorMessage(m.body).contains("device '10.45.0.999' is not an IPv4 or IPv6 address"))
            let d = try await client.execute(uri: "/v1/devices/phone-1", method: .get, headers: auth())
            #expect(d.status == .badRequest)
            let mec = try await client.execute(uri: "/v1/notifications/cell-change", method: .post, headers: auth(),
                                               body: json(cellChange(hoStatus: "1", device: "not-an-ip")))
            #expect(mec.status == .badRequest)
            #expect(errorMessage(mec.body).contains("associateId value 'not-an-ip' is not an IP address"))
            let deadline = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth(),
                                                    body: json(#"{"device": "10.45.0.9", "to": "edge-b", "deadline": "tomorrow"}"#))
            #expect(deadline.status == .badRequest)
            #expect(errorMessage(deadline.body).contains("not an RFC 3339 time"))
            let passed = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth(),
                                                  body: json(#"{"device": "10.45.0.9", "to": "edge-b", "deadline": "2001-01-01T00:00:00Z"}"#))
            #expect(passed.status == .unprocessableContent)
        }
    }

    @Test("MEC enumerations out of range: 400", arguments: ["0", "6", "\"IN_TRANSIT\"", "-1"])
    func mecOutOfRange(_ hoStatus: String) async throws {
        let (_, app) = controlPlaneApp()
        try await app.test(.router) { client in
            let r = try await client.execute(uri: "/v1/notifications/cell-change", method: .post, headers: auth(),
                                             body: json(cellChange(hoStatus: hoStatus)))
            #expect(r.status == .badRequest)
            #expect(errorMessage(r.body).contains("hoStatus must be 1-5"))
            let m = try await client.execute(uri: "/v1/notifications/mobility-procedure", method: .post, headers: auth(), body: json("""
                {"mobilityStatus": \(hoStatus == "6" ? "4" : hoStatus), "associateId": [{"type": 1, "value": "10.45.0.9"}]}
                """))
            #expect(m.status == .badRequest)
            #expect(errorMessage(m.body).contains("mobilityStatus must be 1-3"))
        }
    }

    @Test("MEC names are accepted as well as numbers; a status signal without a migration is 404")
    func mecNames() async throws {
        let (cp, app) = controlPlaneApp()
        try await app.test(.router) { client in
            let none = try await client.execute(uri: "/v1/notifications/cell-change", method: .post, headers: auth(),
                                                body: json(cellChange(hoStatus: "\"COMPLETED\"")))
            #expect(none.status == .notFound)
            let start = try await client.execute(uri: "/v1/notifications/mobility-procedure", method: .post, headers: auth(), body: json("""
                {"mobilityStatus": "INTERHOST_MOVEOUT_TRIGGERED", "associateId": [{"type": "UE_IPV4_ADDRESS", "value": "10.45.0.9"}],
                 "targetAppInfo": {"commInterface": {"ipAddresses": [{"host": "127.0.0.1", "port": 9}]}}}
                """))
            #expect(start.status == .accepted)
            let view = try JSONCoding.decoder.decode(MigrationView.self, from: Data(start.body.readableBytesView))
            #expect(view.to == "edge-b" && view.source == "mec021" && view.device == "10.45.0.9")
            #expect(start.headers[.location] == "/v1/migrations/\(view.id)")
            let failed = try await client.execute(uri: "/v1/notifications/mobility-procedure", method: .post, headers: auth(), body: json("""
                {"mobilityStatus": 3, "associateId": [{"type": 1, "value": "10.45.0.9"}]}
                """))
            #expect(failed.status == .ok)
            #expect(cp.migration(view.id)?.status == .cancelled)
        }
    }

    @Test("bodies over the limit: 413", arguments: ["control plane", "agent"])
    func bodyTooLarge(_ which: String) async throws {
        let app = which == "agent" ? agentApp(maxBody: 1024) : controlPlaneApp(maxBody: 1024).1
        let padding = String(repeating: "x", count: 4096)
        let path = which == "agent" ? "/v1/transfers/m1" : "/v1/migrations"
        try await app.test(.router) { client in
            let r = try await client.execute(uri: path, method: which == "agent" ? .put : .post, headers: auth(),
                                             body: json(#"{"device": "10.45.0.9", "to": "edge-b", "pad": "\#(padding)"}"#))
            #expect(r.status == .contentTooLarge)
            #expect(errorMessage(r.body).contains("larger than 1024 bytes"))
        }
    }

    @Test("the agent's transfer: encodings, ids, devices")
    func agentTransferValidation() async throws {
        let plan = MigrationPlan(migrationId: "m1", device: "10.45.0.9", from: "edge-a", to: "edge-b",
                                 deadlineUnixMs: Int64(Date().timeIntervalSince1970 * 1000) + 60_000, callback: nil,
                                 apps: [], summary: PlanSummary())
        let raw = Array(try JSONCoding.encoder.encode(plan))
        var otherDevice = plan
        otherDevice.device = "phone"
        let badDevice = Array(try JSONCoding.encoder.encode(otherDevice))
        try await agentApp().test(.router) { client in
            func put(_ id: String, _ body: [UInt8], encoding: String?) async throws -> TestResponse {
                var h = auth()
                if let encoding { h[.contentEncoding] = encoding }
                return try await client.execute(uri: "/v1/transfers/\(id)", method: .put, headers: h, body: ByteBuffer(bytes: body))
            }
            let gzip = try await put("m1", raw, encoding: "gzip")
            #expect(gzip.status == .unsupportedMediaType)
            #expect(errorMessage(gzip.body).contains("Content-Encoding 'gzip' is not supported"))
            let notLZ4 = try await put("m1", raw, encoding: SliceCodec.contentEncoding)
            #expect(notLZ4.status == .badRequest)
            #expect(errorMessage(notLZ4.body).contains("not a valid LZ4 frame"))
            var damaged = SliceCodec.compress(raw)
            damaged[damaged.count / 2] ^= 0x55
            let corrupt = try await put("m1", damaged, encoding: SliceCodec.contentEncoding)
            #expect(corrupt.status == .badRequest)
            let mismatch = try await put("m2", SliceCodec.compress(raw), encoding: SliceCodec.contentEncoding)
            #expect(mismatch.status == .badRequest)
            #expect(errorMessage(mismatch.body).contains("does not match the path's 'm2'"))
            let device = try await put("m1", badDevice, encoding: nil)
            #expect(device.status == .badRequest)
            #expect(errorMessage(device.body).contains("device 'phone' is not an IP address"))
            let missing = try await client.execute(uri: "/v1/transfers/m9", method: .get, headers: auth())
            #expect(missing.status == .notFound)

            let first = try await put("m1", SliceCodec.compress(raw), encoding: SliceCodec.contentEncoding)
            #expect(first.status == .accepted)
            let again = try await put("m1", raw, encoding: "identity")
            #expect(again.status == .ok, "the same migration id twice is one transfer")
            let status = try JSONCoding.decoder.decode(AgentTransferStatus.self, from: Data(again.body.readableBytesView))
            #expect(status.migrationId == "m1")
            let list = try await client.execute(uri: "/v1/transfers", method: .get, headers: auth())
            #expect(try JSONCoding.decoder.decode([AgentTransferStatus].self, from: Data(list.body.readableBytesView)).count == 1)
        }
    }

    @Test("LZ4 frames round-trip; truncated, trailing and oversized ones are refused")
    func sliceCodec() throws {
        let raw = Array(String(repeating: "{\"url\": \"http://cdn.example/x\"}, ", count: 3000).utf8)
        let frame = SliceCodec.compress(raw)
        #expect(frame.count < raw.count / 4)
        #expect(try SliceCodec.decompress(frame, limit: raw.count).get() == raw)
        if case .success = SliceCodec.decompress(Array(frame.dropLast(5)), limit: raw.count) { Issue.record("a truncated frame was accepted") }
        if case .success = SliceCodec.decompress(frame + [1, 2, 3], limit: raw.count) { Issue.record("trailing bytes were accepted") }
        if case .success = SliceCodec.decompress(frame, limit: raw.count - 1) { Issue.record("an oversized frame was accepted") }
    }
}
