import Foundation
import Testing

/// Starts `statetap journal write-test`, kills it with SIGKILL after `delay`, returns the last acknowledged count.
private func killedWriter(directory: String, fsync: String, delay: TimeInterval) throws -> Int {
    let p = Process()
    p.executableURL = statetapBinary
    p.arguments = ["journal", "write-test", directory, "--records", "5000000", "--fsync", fsync, "--batch", "64",
                   "--segment-size", "1"]
    let outPath = temporaryPath(".out")
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: outPath) }
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    Thread.sleep(forTimeInterval: delay)
    kill(p.processIdentifier, SIGKILL)
    p.waitUntilExit()
    try out.close()
    let text = try String(contentsOfFile: outPath, encoding: .utf8)
    let acks = text.split(separator: "\n").compactMap { line -> Int? in
        line.hasPrefix("acked ") ? Int(line.dropFirst(6)) : nil
    }
    return acks.last ?? 0
}

@Suite("Journal from the command line", .serialized)
struct JournalCLITests {
    @Test("kill -9 at random moments, 50 times: after recovery every acknowledged record is there and the journal verifies")
    func crashes() throws {
        var generator = SystemRandomNumberGenerator()
        let policies = ["batch", "interval:20", "never"]
        var totalAcked = 0
        for round in 0..<50 {
            let dir = temporaryPath("-journal")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let policy = policies[round % policies.count]
            let acked = try killedWriter(directory: dir, fsync: policy,
                                         delay: Double.random(in: 0.05...0.6, using: &generator))
            totalAcked += acked
            // Opening the journal again recovers it (a torn tail is cut).
            let reopen = try statetap(["journal", "write-test", dir, "--records", "0"])
            #expect(reopen.status == 0, "round \(round): \(reopen.stderr)")
            let verify = try statetap(["journal", "verify", dir, "--json"])
            #expect(verify.status == 0, "round \(round) (\(policy)): \(verify.stdout) \(verify.stderr)")
            let dump = try statetap(["journal", "dump", dir])
            #expect(dump.status == 0)
            var seen: [Int] = []
            for line in dump.stdout.split(separator: "\n") {
                guard let r = line.range(of: "http://test.example/"), let q = line[r.upperBound...].firstIndex(of: "?"),
                      let n = Int(line[r.upperBound..<q]) else { continue }
                seen.append(n)
            }
            // Records were appended in order: what survives is a prefix, with nothing twice and nothing missing,
            // and it covers everything acknowledged.
            #expect(seen == Array(0..<seen.count), "round \(round) (\(policy)): records out of order, missing or repeated")
            #expect(seen.count >= acked, "round \(round) (\(policy)): \(acked) acknowledged, \(seen.count) recovered")
        }
        #expect(totalAcked > 0, "the writers acknowledged records before they were killed")
    }

    @Test("replay --journal, then journal stats, dump by device, state show, and the store rebuilt at the next start")
    func replayJournal() throws {
        let capture = temporaryPath(".pcap")
        let dir = temporaryPath("-journal")
        defer { try? FileManager.default.removeItem(atPath: capture); try? FileManager.default.removeItem(atPath: dir) }
        #expect(try statetap(["generate", capture, "--packets", "20000"]).status == 0)
        let first = try statetap(["replay", capture, "--journal", dir, "--json", "--events", "jsonl", "--events-out", "/dev/null"])
        #expect(first.status == 0, "\(first.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any])
        let events = try #require(summary["events"] as? [String: Any])
        let journal = try #require(summary["journal"] as? [String: Any])
        let webLinks = try #require(events["web_link"] as? Int)
        #expect(webLinks > 100)
        #expect(journal["records_written"] as? Int == webLinks + (events["server_name"] as? Int ?? 0))
        #expect(journal["records_acknowledged"] as? Int == journal["records_written"] as? Int)
        let stats = try statetap(["journal", "stats", dir, "--json"])
        let s = try #require(try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any])
        #expect(s["records"] as? Int == journal["records_written"] as? Int)
        #expect((s["state_store_checkpoint"] as? String)?.hasPrefix("segments up to 1,") == true, "\(s)")
        // One device's records through the index equal a full scan's.
        let dump = try statetap(["journal", "dump", dir])
        let firstDevice = try #require(dump.stdout.split(separator: "\n").first.flatMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }?["device"] as? String)
        let indexed = try statetap(["journal", "dump", dir, "--device", firstDevice])
        let scanned = try statetap(["journal", "dump", dir, "--device", firstDevice, "--no-index"])
        #expect(indexed.status == 0 && !indexed.stdout.isEmpty && indexed.stdout == scanned.stdout)
        let show = try statetap(["state", "show", firstDevice, "--journal", dir, "--json"])
        #expect(show.status == 0, "\(show.stderr)")
        let state = try #require(try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])
        #expect((state["snapshot"] as? [String: Any])?["device"] as? String == firstDevice)
        // The second run starts by rebuilding the state store from what the first wrote: from the checkpoint the
        // first wrote when its segment closed, with nothing after it to read.
        let written = try #require(journal["records_written"] as? Int)
        func recovery(_ run: Run) throws -> (checkpoint: Int?, replayed: Int?) {
            #expect(run.status == 0, "\(run.stderr)")
            let j = try #require((try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])?["journal"] as? [String: Any])
            let r = j["recovery"] as? [String: Any]
            return (r?["records_from_checkpoint"] as? Int, r?["records_replayed"] as? Int)
        }
        let second = try recovery(try statetap(["replay", capture, "--journal", dir, "--json"]))
        #expect(second.checkpoint == written && second.replayed == 0)
        // Without the checkpoint, the third run reads every record both runs wrote.
        try FileManager.default.removeItem(atPath: dir + "/store.checkpoint")
        let third = try recovery(try statetap(["replay", capture, "--journal", dir, "--json"]))
        #expect(third.checkpoint == 0 && third.replayed == 2 * written)
    }

    @Test("compact merges small segments into one, keeps every record in order, indexes the result")
    func compact() throws {
        let capture = temporaryPath(".pcap")
        let dir = temporaryPath("-journal")
        defer { try? FileManager.default.removeItem(atPath: capture); try? FileManager.default.removeItem(atPath: dir) }
        #expect(try statetap(["generate", capture, "--packets", "5000"]).status == 0)
        for _ in 0..<3 { #expect(try statetap(["replay", capture, "--journal", dir]).status == 0) }
        func segments() throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".stj") }.sorted()
        }
        #expect(try segments().count == 3)
        let checkpoint = dir + "/store.checkpoint"
        #expect(FileManager.default.fileExists(atPath: checkpoint), "each replay checkpointed its store")
        let before = try statetap(["journal", "dump", dir])
        let r = try statetap(["journal", "compact", dir])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("compacted 3 segment(s)"), "\(r.stdout)")
        #expect(try segments().count == 1)
        let after = try statetap(["journal", "dump", dir])
        #expect(after.stdout == before.stdout && !after.stdout.isEmpty)
        // The copy moved every record into a segment after the checkpoint's: a start must not count them twice.
        #expect(!FileManager.default.fileExists(atPath: checkpoint), "compaction removes the checkpoint")
        let next = try statetap(["replay", capture, "--journal", dir, "--json"])
        let recovery = ((try JSONSerialization.jsonObject(with: Data(next.stdout.utf8)) as? [String: Any])?["journal"]
            as? [String: Any])?["recovery"] as? [String: Any]
        #expect(recovery?["records_from_checkpoint"] as? Int == 0)
        #expect(recovery?["records_replayed"] as? Int == before.stdout.split(separator: "\n").count)
        let verify = try statetap(["journal", "verify", dir, "--json"])
        #expect(verify.status == 0 && verify.stdout.contains("\"missing_indexes\":[]"), "\(verify.stdout)")
    }

    @Test("compaction killed at random moments, 12 times: readers and the next writer see every record exactly once")
    func compactionCrashes() throws {
        let source = temporaryPath("-journal")
        defer { try? FileManager.default.removeItem(atPath: source) }
        let records = 40_000
        let w = try statetap(["journal", "write-test", source, "--records", "\(records)", "--fsync", "never",
                              "--batch", "256", "--segment-size", "1"])
        #expect(w.status == 0, "\(w.stderr)")
        func numbers(_ dir: String) throws -> [Int] {
            let dump = try statetap(["journal", "dump", dir])
            #expect(dump.status == 0, "\(dump.stderr)")
            return dump.stdout.split(separator: "\n").compactMap { line in
                guard let r = line.range(of: "http://test.example/"), let q = line[r.upperBound...].firstIndex(of: "?")
                else { return nil }
                return Int(line[r.upperBound..<q])
            }
        }
        #expect(try numbers(source) == Array(0..<records))
        func compact(_ dir: String, killAfter delay: TimeInterval?) throws -> Int32? {
            let p = Process()
            p.executableURL = statetapBinary
            p.arguments = ["journal", "compact", dir, "--segment-size", "4"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            if let delay {
                Thread.sleep(forTimeInterval: delay)
                kill(p.processIdentifier, SIGKILL)
            }
            p.waitUntilExit()
            return p.terminationReason == .exit ? p.terminationStatus : nil
        }
        // How long an uninterrupted compaction takes here: the kills fall inside it.
        let whole = temporaryPath("-journal")
        defer { try? FileManager.default.removeItem(atPath: whole) }
        try FileManager.default.copyItem(atPath: source, toPath: whole)
        let started = Date()
        #expect(try compact(whole, killAfter: nil) == 0)
        let duration = Date().timeIntervalSince(started)
        #expect(try numbers(whole) == Array(0..<records))

        var generator = SystemRandomNumberGenerator()
        var killedMidway = 0
        for round in 0..<12 {
            let dir = temporaryPath("-journal")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try FileManager.default.copyItem(atPath: source, toPath: dir)
            let status = try compact(dir, killAfter: Double.random(in: 0...duration, using: &generator))
            if status == nil, FileManager.default.fileExists(atPath: dir + "/COMPACTION") { killedMidway += 1 }
            // A reader, which changes nothing, sees each record once whatever the marker says…
            #expect(try numbers(dir) == Array(0..<records), "round \(round): reader before recovery")
            // …and the next writer settles the marker.
            let reopen = try statetap(["journal", "write-test", dir, "--records", "0"])
            #expect(reopen.status == 0, "round \(round): \(reopen.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/COMPACTION"), "round \(round): marker left")
            #expect(try numbers(dir) == Array(0..<records), "round \(round): after recovery")
            let verify = try statetap(["journal", "verify", dir, "--json"])
            #expect(verify.status == 0, "round \(round): \(verify.stdout)")
        }
        #expect(killedMidway > 0, "no kill fell inside a compaction (it took \(duration) s)")
    }

    @Test("bad journal flags and requests say what is wrong", arguments: [
        (["replay", "/dev/null", "--journal", "/tmp/j", "--fsync", "sometimes"], "--fsync must be never, batch or interval:MS"),
        (["replay", "/dev/null", "--journal", "/tmp/j", "--retain-bytes", "12Q"], "--retain-bytes must be a size"),
        (["replay", "/dev/null", "--journal", "/tmp/j", "--segment-size", "0"], "--segment-size must be 1...4095 MB"),
        (["replay", "/dev/null", "--journal", "/tmp/j", "--journal-lz4-acceleration", "0"], "--journal-lz4-acceleration must be 1...64, got 0"),
        (["journal", "verify", "/nonexistent/journal"], "no journal directory at /nonexistent/journal"),
        (["journal", "dump", "/tmp", "--since", "yesterday"], "--since takes seconds since the epoch or an RFC 3339 time"),
        (["journal", "dump", "/tmp", "--since", "1e300"], "is past the year 2500"),
        // A 40-digit fraction is a valid time (it trapped Foundation's formatter): the next problem is the directory.
        (["journal", "dump", "/nonexistent/journal", "--since", "2030-01-01T00:00:00." + String(repeating: "9", count: 40) + "Z"],
         "no journal directory at /nonexistent/journal"),
        (["state", "show", "not-an-address", "--journal", "/tmp"], "not an IPv4 or IPv6 address"),
    ])
    func badInput(arguments: [String], message: String) throws {
        let r = try statetap(arguments)
        #expect(r.status != 0)
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }
}
