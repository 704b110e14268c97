import Foundation
import Testing

/// Parses one line of JSON into an object.
private func object(_ line: Substring) throws -> [String: Any] {
    try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
}

/// FNV-1a (64 bits) of a file's bytes.
private func fnv1a(_ path: String) throws -> UInt64 {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in data { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    return h
}

@Suite("statetap generate --mix")
struct HTTPMixTests {
    @Test("--mix http: the replay finds one web_link event per generated request, each with its response")
    func httpMixEvents() throws {
        let path = temporaryPath(".pcap"), events = temporaryPath(".jsonl")
        defer {
            try? FileManager.default.removeItem(atPath: path)
            try? FileManager.default.removeItem(atPath: events)
        }
        let gen = try statetap(["generate", path, "--packets", "20000", "--mix", "http", "--truth"])
        #expect(gen.status == 0, "\(gen.stderr)")
        let truth = try object(Substring(gen.stdout))
        let requests = try #require(truth["http_requests"] as? Int)
        #expect(requests > 100, "20,000 packets of keep-alive connections carry hundreds of requests")
        #expect(truth["http_responses"] as? Int == requests, "every request is answered")
        #expect((truth["http_chunked_responses"] as? Int ?? 0) > 0, "some bodies are chunked")
        #expect(requests > (truth["tcp_flows"] as? Int ?? 0) * 2, "connections carry several requests each")

        let run = try statetap(["replay", path, "--json", "--progress-interval", "0", "--events", "jsonl",
                                "--events-out", events])
        #expect(run.status == 0, "\(run.stderr)")
        let summary = try object(Substring(run.stdout))
        #expect(summary["packets"] as? Int == truth["packets"] as? Int)
        let counted = try #require(summary["events"] as? [String: Any])
        #expect(counted["web_link"] as? Int == requests)
        #expect(counted["dropped"] as? Int == 0)
        let http = try #require(summary["http"] as? [String: Any])
        #expect(http["requests"] as? Int == requests)
        #expect(http["responses"] as? Int == truth["http_responses"] as? Int)

        // The events written: every request with its response's status and CDN headers.
        let lines = try String(contentsOfFile: events, encoding: .utf8).split(separator: "\n")
        let links = try lines.map(object).filter { $0["kind"] as? String == "web_link" }
        #expect(links.count == requests)
        #expect(links.allSatisfy { ($0["url"] as? String)?.hasPrefix("http://") == true && $0["status"] != nil })
        let statuses = Set(links.compactMap { $0["status"] as? Int })
        #expect(statuses.isSuperset(of: [200, 304]), "statuses: \(statuses)")
        #expect(links.contains { $0["cache_control"] != nil && $0["etag"] != nil && $0["via"] != nil
            && $0["x_cache"] != nil && $0["age"] != nil && $0["content_type"] != nil })
        #expect(Set(links.compactMap { $0["method"] as? String }).isSuperset(of: ["GET", "POST"]))
        #expect(links.contains { $0["teid"] != nil }, "some connections run inside GTP-U")
    }

    @Test("--mix mixed is the default and writes the same bytes as before --mix existed")
    func mixedUnchanged() throws {
        let a = temporaryPath(".pcap"), b = temporaryPath(".pcap")
        defer {
            try? FileManager.default.removeItem(atPath: a)
            try? FileManager.default.removeItem(atPath: b)
        }
        let plain = try statetap(["generate", a, "--packets", "5000", "--truth"])
        let mixed = try statetap(["generate", b, "--packets", "5000", "--mix", "mixed", "--truth"])
        #expect(plain.status == 0 && mixed.status == 0, "\(plain.stderr)\(mixed.stderr)")
        #expect(plain.stdout == mixed.stdout)
        // The capture the tests and the demo were written against (statetap generate --packets 5000, default seed,
        // before --mix): 1,206,604 bytes. Change this value only for a deliberate change of the mixed traffic.
        #expect(try fnv1a(a) == 0x4049_a983_1b8f_cb0f)
        #expect(try fnv1a(b) == 0x4049_a983_1b8f_cb0f)

        // One request per TCP session in the mixed traffic: the truth says so and the replay agrees.
        let truth = try object(Substring(plain.stdout))
        #expect(truth["http_requests"] as? Int == truth["tcp_flows"] as? Int)
        let run = try statetap(["replay", a, "--json", "--progress-interval", "0"])
        #expect(run.status == 0, "\(run.stderr)")
        let counted = try #require(try object(Substring(run.stdout))["events"] as? [String: Any])
        #expect(counted["web_link"] as? Int == truth["http_requests"] as? Int)
    }
}
