import Foundation
import Testing

/// A tmpfs of a given size mounted on a fresh directory; unmounted and removed whatever the test did.
final class SmallDisk {
    let path: String
    init(kilobytes: Int) throws {
        path = NSTemporaryDirectory() + "statetap-tmpfs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        let r = try sh(["mount", "-t", "tmpfs", "-o", "size=\(kilobytes)k,mode=0700", "tmpfs", path])
        guard r.status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: ["why": r.stderr]) }
    }
    func resize(kilobytes: Int) throws -> Int32 {
        try sh(["mount", "-o", "remount,size=\(kilobytes)k", path]).status
    }
    deinit {
        _ = try? sh(["umount", "-l", path])
        try? FileManager.default.removeItem(atPath: path)
    }
}

@Suite("Journal on a full disk", .serialized,
       .enabled(if: isRoot, "needs root: mounts a small tmpfs to fill it"))
struct JournalDiskFullTests {
    @Test("ENOSPC: a clear error, records dropped and counted, the writer keeps going and resumes by itself when space returns")
    func diskFull() throws {
        let disk = try SmallDisk(kilobytes: 256)
        let dir = disk.path + "/journal"
        let writer = BackgroundProcess([statetapBinary, "journal", "write-test", dir, "--records", "400000",
                                        "--fsync", "never", "--segment-size", "1", "--padding", "400"])
        try writer.start()
        // Bounded wait for the disk to fill.
        let deadline = Date().addingTimeInterval(60)
        while writer.isRunning && !writer.stdoutSoFar.contains("diskfull") && Date() < deadline { usleep(50_000) }
        #expect(writer.stdoutSoFar.contains("diskfull"), "the 256 KB disk filled up")
        #expect(writer.stderrSoFar.contains("disk full") && writer.stderrSoFar.contains("No space left on device"))
        #expect(writer.isRunning, "the writer keeps running on a full disk")
        #expect(try disk.resize(kilobytes: 256 * 1024) == 0)
        let r = writer.wait(timeout: 120)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("writing again"), "\(r.stderr)")
        let done = try #require(r.stdout.split(separator: "\n").last { $0.hasPrefix("done") })
        let fields = done.split(separator: " ")
        let written = Int(fields[2]) ?? -1, dropped = Int(fields[4]) ?? -1
        #expect(written > 0 && dropped > 0, "\(done)")
        #expect(written + dropped == 400_000, "every record is written or counted as dropped: \(done)")
        let verify = try sh([statetapBinary, "journal", "verify", dir, "--json"])
        #expect(verify.status == 0, "\(verify.stdout)")
        let v = try #require(try JSONSerialization.jsonObject(with: Data(verify.stdout.utf8)) as? [String: Any])
        #expect(v["records"] as? Int == written)
    }

    @Test("replay onto a full disk exits 3 and says how many records the journal lost")
    func replayExitStatus() throws {
        let work = NSTemporaryDirectory() + "statetap-replay-full-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let capture = work + "/mix.pcap"
        let g = try sh([statetapBinary, "generate", capture, "--packets", "30000", "--seed", "5"])
        #expect(g.status == 0, "\(g.stderr)")
        let disk = try SmallDisk(kilobytes: 128)
        let r = try sh([statetapBinary, "replay", capture, "--journal", disk.path + "/journal", "--fsync", "never",
                        "--segment-size", "1", "--json", "--progress-interval", "0"])
        #expect(r.status == 3, "exit \(r.status): \(r.stderr.suffix(400))")
        #expect(r.stderr.contains("records were not written") && r.stderr.contains("disk full:"), "\(r.stderr.suffix(400))")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let journal = try #require(summary["journal"] as? [String: Any])
        #expect((journal["dropped_disk_full"] as? Int ?? 0) > 0, "\(journal)")
    }
}
