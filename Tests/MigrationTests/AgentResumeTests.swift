import Decode
import Foundation
import Journal
import Extract
import Rings
import Testing
@testable import Migration

/// A plan of `paths` on cdn.example, due `deadlineSeconds` from now.
private func plan(_ id: String, paths: [String], deadlineSeconds: Double) -> MigrationPlan {
    let links = paths.map {
        PlannedLink(url: "http://cdn.example" + $0, host: "cdn.example", path: $0, fetch: "get", etag: nil, lastModified: nil,
                    contentLength: nil)
    }
    var summary = PlanSummary()
    summary.apps = 1
    summary.links = links.count
    return MigrationPlan(migrationId: id, device: testDevice, from: "edge-a", to: "edge-b",
                         deadlineUnixMs: Int64((Date().timeIntervalSince1970 + deadlineSeconds) * 1000), callback: nil,
                         apps: [PlannedApp(endpoint: "edge-a", host: "cdn.example", proxy: "edge-a", method: .prefetchLinks,
                                           links: links, hosts: [], state: nil)],
                         summary: summary)
}

@Suite("Agent restarts", .timeLimit(.minutes(1)))
struct AgentResumeTests {
    @Test("an unfinished plan in the agent's journal is fetched after a restart; finished and expired ones are not")
    func resumeFromJournal() async throws {
        let dir = NSTemporaryDirectory() + "statetap-agent-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let d = try #require(IPAddress(testDevice))
        let unfinished = plan("m-unfinished", paths: ["/r/1", "/r/2", "/r/3?x=y"], deadlineSeconds: 30)
        let finished = plan("m-finished", paths: ["/done/1"], deadlineSeconds: 30)
        let expired = plan("m-expired", paths: ["/expired/1"], deadlineSeconds: -1)

        // What the agent journaled before it stopped: three plans received, one of them finished.
        var options = JournalOptions()
        options.dropWhenFull = false
        options.flushMilliseconds = 10
        let writer = try JournalWriter(directory: dir, options: options)
        writer.start()
        var ts = realtimeNanoseconds()
        func mark(_ p: MigrationPlan, _ status: String) {
            ts += 1
            writer.appendMarker(.migration(MigrationMark(id: p.migrationId, device: d, from: p.from, to: p.to, status: status,
                                                         timestampNanoseconds: ts)))
        }
        for p in [unfinished, finished, expired] {
            ts += 1
            writer.appendMarker(.plan(PlanMark(migrationID: p.migrationId, device: d, timestampNanoseconds: ts,
                                               body: Array(try JSONCoding.encoder.encode(p)))))
            mark(p, "received")
        }
        mark(unfinished, "prefetching")
        mark(finished, "prefetching")
        mark(finished, "ready")
        writer.finish()

        let cache = TestCache()
        try await withServer(cache.router()) { port in
            let agent = makeAgent(cache: "http://127.0.0.1:\(port)")
            #expect(try agent.resume(directory: dir) == 1)
            let status = try await eventually("the resumed transfer") {
                agent.status(unfinished.migrationId).flatMap { $0.status.isFinal ? $0 : nil }
            }
            #expect(status.status == .ready, "\(status.detail ?? "")")
            #expect(status.progress.objects == 3 && status.progress.total == 3)
            #expect(cache.requests == ["/r/1": 1, "/r/2": 1, "/r/3?x=y": 1])
            #expect(agent.status(finished.migrationId) == nil, "a finished plan is not taken up again")
            let late = try #require(agent.status(expired.migrationId))
            #expect(late.status == .failed)
            #expect(late.detail == "the deadline passed while the agent was down")
        }
    }

    @Test("an empty or missing journal resumes nothing")
    func nothingToResume() throws {
        let dir = NSTemporaryDirectory() + "statetap-agent-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        #expect(try makeAgent(cache: "http://127.0.0.1:9").resume(directory: dir) == 0)
    }
}
