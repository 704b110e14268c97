import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Journal
import NIOCore
import NIOHTTP1
import Extract
import Testing
@testable import Migration

/// The device's web state: cacheable links (five plain, two with the cache's ETag), uncacheable ones, one whose
/// response was never seen, a cacheable POST, and a TLS-only application whose server name is `127.0.0.1`.
private let cacheablePlain = ["/app.js", "/style.css", "/img/1.png", "/img/2.png?size=large", "/font.woff2"]
private let cacheableWithETag = ["/data/a.json", "/data/b.json"]
private let uncacheable = ["/api/cart", "/api/session", "/private/profile"]

private func deviceState() -> StateStore {
    var events: [StateEvent] = []
    var i = 0
    func add(_ e: StateEvent) { events.append(e); i += 1 }
    for p in cacheablePlain { add(webLinkEvent("http://cdn.example" + p, at: i, cacheable: true, contentLength: 40)) }
    for p in cacheableWithETag { add(webLinkEvent("http://cdn.example" + p, at: i, cacheable: true, etag: "\"v1\"")) }
    for p in uncacheable { add(webLinkEvent("http://cdn.example" + p, at: i, cacheable: false)) }
    add(webLinkEvent("http://cdn.example/pending/stream", at: i, status: nil, cacheable: nil))
    add(webLinkEvent("http://cdn.example/api/submit", at: i, method: "POST", cacheable: true))
    add(serverNameEvent("127.0.0.1", at: i))
    return store(events)
}

/// `count` cacheable links of one application.
private func manyLinks(_ count: Int) -> StateStore {
    store((0..<count).map { webLinkEvent("http://cdn.example/obj/\($0)", at: $0, cacheable: true) })
}

@Suite("Migrations end to end on loopback", .timeLimit(.minutes(1)))
struct EndToEndTests {
    @Test("MEC 012 IN_PREPARATION: planned, transferred, each cacheable link fetched once through the cache, ready")
    func cellChangeToReady() async throws {
        let cache = TestCache()
        try await withServer(cache.router()) { cachePort in
            let agent = makeAgent(cache: "http://127.0.0.1:\(cachePort)", preconnectPort: cachePort)
            try await withServer(agent.router()) { agentPort in
                let controlPort = try unusedPort()
                let base = "http://127.0.0.1:\(controlPort)"
                let plans = Locked<[[UInt8]]>([])
                let cp = makeControlPlane(store: deviceState(), agent: "http://127.0.0.1:\(agentPort)",
                                          configuration: controlPlaneConfiguration(advertise: base),
                                          journal: { r in if case .plan(let p) = r { plans.mutate { $0.append(p.body) } } })
                try await withServer(cp.router(), port: controlPort) { _ in
                    let signal = try await http(.POST, base + "/v1/notifications/cell-change",
                                                body: Array(cellChange(hoStatus: "1").utf8),
                                                headers: [("Content-Type", "application/json")])
                    #expect(signal.status == 202, "\(signal.text)")
                    let started = try signal.decode(MigrationView.self)
                    #expect(signal.headers.first(name: "Location") == "/v1/migrations/\(started.id)")
                    #expect(started.source == "mec012" && started.from == "edge-a" && started.to == "edge-b")

                    let done = try await eventually("the migration to finish") { () -> HTTPResult? in
                        let r = try await http(.GET, base + "/v1/migrations/\(started.id)")
                        return try r.decode(MigrationView.self).status.isFinal ? r : nil
                    }
                    let view = try done.decode(MigrationView.self)
                    #expect(view.status == .ready, "\(view.detail ?? "")")
                    #expect(done.text.contains("\"signal_to_ready_ms\""), "snake_case API, the headline figure included")

                    // Every cacheable GET once, through the cache, with its own Host; nothing else.
                    let expected = Dictionary(uniqueKeysWithValues: (cacheablePlain + cacheableWithETag).map { ($0, 1) })
                    #expect(cache.requests == expected)
                    #expect(cache.hosts == ["cdn.example"])

                    let t = view.timings
                    let planned = try #require(t.plannedMs), transferring = try #require(t.transferringMs)
                    let prefetching = try #require(t.prefetchingMs), ready = try #require(t.readyMs)
                    #expect(0 <= planned && planned <= transferring && transferring < prefetching && prefetching < ready)
                    #expect(t.failedMs == nil && t.cancelledMs == nil)

                    var plan = PlanSummary()
                    plan.apps = 2
                    plan.methods = ["prefetch-links": 1, "hosts-only": 1]
                    plan.links = 7
                    plan.conditionalLinks = 2
                    plan.knownBytes = 5 * 40
                    plan.hosts = 1
                    plan.skippedUncacheable = 3
                    plan.skippedUnknownCacheability = 1
                    plan.skippedNotGet = 1
                    #expect(view.plan == plan)
                    var progress = PrefetchProgress()
                    progress.total = 8
                    progress.done = 8
                    progress.objects = 5
                    progress.bytes = cacheablePlain.reduce(0) { $0 + "object at \($1)\n".utf8.count }
                    progress.notModified = 2
                    progress.hostsConnected = 1
                    progress.skippedUncacheable = 3
                    #expect(view.prefetch == progress)
                    #expect(view.transfer.attempts == 1 && view.transfer.lastError == nil)
                    #expect(view.transfer.compressedBytes > 0 && view.transfer.compressedBytes < view.transfer.rawBytes)
                    #expect(agent.status(started.id)?.status == .ready)

                    // The same PUT again: one transfer, nothing fetched twice.
                    let body = try #require(plans.value.first)
                    #expect(plans.value.count == 1)
                    let again = try await http(.PUT, "http://127.0.0.1:\(agentPort)/v1/transfers/\(started.id)",
                                               body: SliceCodec.compress(body),
                                               headers: [("Content-Encoding", SliceCodec.contentEncoding)])
                    #expect(again.status == 200)
                    #expect(try again.decode(AgentTransferStatus.self).status == .ready)
                    try await Task.sleep(for: .milliseconds(100))
                    #expect(agent.all().count == 1)
                    #expect(cache.requests == expected)

                    // The handover completes.
                    let completed = try await http(.POST, base + "/v1/notifications/cell-change", body: Array(cellChange(hoStatus: "3").utf8))
                    #expect(completed.status == 200)
                    #expect(try completed.decode(MigrationView.self).status == .completed)

                    // What the device looked like, and the figures.
                    let deviceView = try await http(.GET, base + "/v1/devices/\(testDevice)").decode(DeviceView.self)
                    #expect(deviceView.linksTotal == 12 && deviceView.apps.count == 2)
                    let list = try await http(.GET, base + "/v1/migrations").decode([MigrationView].self)
                    #expect(list.map(\.id) == [started.id])
                    let metrics = try await http(.GET, base + "/metrics").text
                    #expect(metrics.contains(#"statetap_migrations_started_total{source="mec012"} 1"#))
                    #expect(metrics.contains(#"statetap_migrations_finished_total{status="ready"} 1"#))
                }
            }
        }
    }

    @Test("the agent is down during the transfer: retried with backoff, ready once it listens; a repeated signal is the same migration")
    func agentComesUp() async throws {
        let cache = TestCache()
        try await withServer(cache.router()) { cachePort in
            let agentPort = try unusedPort()
            let cp = makeControlPlane(store: manyLinks(3), agent: "http://127.0.0.1:\(agentPort)")
            let app = Application(router: cp.router(), logger: quietLogger("test.app"))
            try await app.test(.router) { client in
                let request = json(#"{"device": "\#(testDevice)", "to": "edge-b", "deadline": "\#(deadline(in: 20))"}"#)
                let first = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth(), body: request)
                #expect(first.status == .accepted)
                let id = try JSONCoding.decoder.decode(MigrationView.self, from: Data(first.body.readableBytesView)).id
                let failing = try await eventually("two failed transfer attempts") { () -> MigrationView? in
                    cp.migration(id).flatMap { $0.transfer.attempts >= 2 ? $0 : nil }
                }
                #expect(failing.status == .transferring)
                #expect(failing.transfer.lastError != nil)

                let second = try await client.execute(uri: "/v1/migrations", method: .post, headers: auth(), body: request)
                #expect(second.status == .ok, "a second signal while the first runs is the same migration")
                #expect(try JSONCoding.decoder.decode(MigrationView.self, from: Data(second.body.readableBytesView)).id == id)

                let agent = makeAgent(cache: "http://127.0.0.1:\(cachePort)")
                try await withServer(agent.router(), port: agentPort) { _ in
                    let view = try await eventually("the migration to finish") { cp.migration(id).flatMap { $0.status.isFinal ? $0 : nil } }
                    #expect(view.status == .ready, "\(view.detail ?? "")")
                    #expect(view.transfer.attempts > 1)
                    #expect(view.transfer.lastError == nil)
                    #expect(view.prefetch.objects == 3)
                }
                #expect(cache.requests == ["/obj/0": 1, "/obj/1": 1, "/obj/2": 1])
            }
        }
    }

    @Test("the agent never comes up: the migration fails at its deadline, saying why")
    func agentNeverUp() async throws {
        let agentPort = try unusedPort()
        let cp = makeControlPlane(store: manyLinks(2), agent: "http://127.0.0.1:\(agentPort)")
        // 3 s: room for several attempts (100, 200, 400, 800 ms apart) even on a loaded machine.
        let view = try cp.startMigration(MigrationRequest(device: testDevice, to: "edge-b", deadline: deadline(in: 3)), source: "api").view
        let failed = try await eventually(within: 30, "the deadline") { cp.migration(view.id).flatMap { $0.status.isFinal ? $0 : nil } }
        #expect(failed.status == .failed)
        let detail = failed.detail ?? ""
        #expect(detail.contains("deadline passed during the transfer after \(failed.transfer.attempts) attempt(s)"), "\(detail)")
        #expect(detail.contains("last error:") && !detail.hasSuffix("none"), "\(detail)")
        #expect(failed.transfer.attempts > 1, "\(detail)")
        #expect(detail.contains("Connection refused"), "\(detail)")
        let at = try #require(failed.timings.failedMs)
        #expect(at > 2800 && at < 10_000, "failed at \(at) ms, the deadline was 3 s")
        #expect(failed.timings.readyMs == nil)
    }

    @Test("cancelling a migration stops the agent's prefetching", arguments: ["DELETE /v1/migrations/{id}", "MEC 012 CANCELLED"])
    func cancellation(_ how: String) async throws {
        let cache = TestCache(delay: .milliseconds(150))
        let links = 20
        try await withServer(cache.router()) { cachePort in
            let agent = makeAgent(cache: "http://127.0.0.1:\(cachePort)", concurrency: 1)
            try await withServer(agent.router()) { agentPort in
                let cp = makeControlPlane(store: manyLinks(links), agent: "http://127.0.0.1:\(agentPort)")
                let app = Application(router: cp.router(), logger: quietLogger("test.app"))
                try await app.test(.router) { client in
                    let start = try await client.execute(uri: "/v1/notifications/cell-change", method: .post, headers: auth(),
                                                         body: json(cellChange(hoStatus: "1")))
                    #expect(start.status == .accepted)
                    let id = try JSONCoding.decoder.decode(MigrationView.self, from: Data(start.body.readableBytesView)).id
                    _ = try await eventually("the first object") { (agent.status(id)?.progress.done ?? 0) >= 1 ? true : nil }

                    let r = if how.hasPrefix("DELETE") {
                        try await client.execute(uri: "/v1/migrations/\(id)", method: .delete, headers: auth())
                    } else {
                        try await client.execute(uri: "/v1/notifications/cell-change", method: .post, headers: auth(),
                                                 body: json(cellChange(hoStatus: "\"CANCELLED\"")))
                    }
                    #expect(r.status == .ok)
                    let view = try JSONCoding.decoder.decode(MigrationView.self, from: Data(r.body.readableBytesView))
                    #expect(view.status == .cancelled && view.id == id)
                    #expect(view.detail == (how.hasPrefix("DELETE") ? "cancelled through the API" : "handover cancelled (MEC 012)"))

                    let stopped = try await eventually(within: 5, "the agent to cancel") {
                        agent.status(id).flatMap { $0.status == .cancelled ? $0 : nil }
                    }
                    #expect(stopped.detail == "cancelled by the control plane")
                    let fetched = cache.total
                    try await Task.sleep(for: .milliseconds(450))  // three more objects' time, were it still fetching
                    #expect(cache.total == fetched, "nothing fetched after the cancellation")
                    #expect(fetched < links / 4, "\(fetched) of \(links) fetched")
                    #expect(stopped.progress.done < links)
                    #expect(cp.migration(id)?.status == .cancelled)
                    #expect(cp.migration(id)?.timings.readyMs == nil)
                }
            }
        }
    }
}
