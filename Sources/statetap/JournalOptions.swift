import Rings
import Extract
import ArgumentParser
import Decode
import Journal
import Logging
import Pipeline
import Tap
import Synchronization

/// `--journal` and its tuning, shared by `replay` and `capture`.
struct JournalCLIOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Journal the application-state events in this directory (created 0700; files 0600) and keep the per-device state store.",
        discussion: "At start the last segment is verified and a torn tail cut; the state store is rebuilt on the journal thread while capture starts (events meanwhile wait in its queue), from its checkpoint (DIR/store.checkpoint, written each time a segment closes) and the segments after it, or from every record when there is no usable checkpoint.",
        valueName: "dir"))
    var journal: String?

    @Option(help: "A journal batch (one LZ4 frame) closes at this many records…")
    var journalBatch = 4096

    @Option(help: "… or this many milliseconds after its first record.")
    var journalFlushMs = 200

    @Option(help: ArgumentHelp(
        "When records are made durable: never, batch or interval:MS.",
        discussion: """
            never: written to the kernel at once; survives a crash of statetap, not of the machine (the kernel's \
            writeback delay, ~30 s, can be lost). batch: fsync after every batch; a record is acknowledged only \
            once on disk; survives a machine crash. interval:MS: fsync every MS milliseconds; a machine crash loses \
            at most that interval, none of it acknowledged.
            """))
    var fsync = "interval:1000"

    @Option(help: ArgumentHelp(
        "LZ4 acceleration, 1...64: higher compresses faster and less.",
        discussion: "1 is LZ4's default. On URL-heavy records 2 took ~4% less of the journal thread's LZ4 time than 1 for ~1% more bytes (perf of journal write-test)."))
    var journalLz4Acceleration = 1

    @Option(help: "Segment size in MB: a segment is closed, indexed and the state store checkpointed at this size.")
    var segmentSize = 64

    @Option(help: "Remove closed segments last written more than this many days ago.")
    var retainDays: Double?

    @Option(help: "Remove the oldest closed segments while the journal is larger than this (bytes; K, M, G suffixes).")
    var retainBytes: String?

    @Option(help: "Devices the state store keeps (past it, the least recently seen tenth goes).")
    var maxDevices = 100_000

    @Option(help: "Links kept per application (past it, the least recently seen tenth goes).")
    var maxLinksPerApp = 1000

    func validate() throws {
        guard journal != nil else { return }
        guard (1...1_000_000).contains(journalBatch) else { throw ValidationError("--journal-batch must be 1...1000000, got \(journalBatch)") }
        guard (1...60_000).contains(journalFlushMs) else { throw ValidationError("--journal-flush-ms must be 1...60000, got \(journalFlushMs)") }
        guard (1...64).contains(journalLz4Acceleration) else {
            throw ValidationError("--journal-lz4-acceleration must be 1...64, got \(journalLz4Acceleration)")
        }
        guard FsyncPolicy(argument: fsync) != nil else {
            throw ValidationError("--fsync must be never, batch or interval:MS (1...3600000), got '\(fsync)'")
        }
        guard (1...4095).contains(segmentSize) else { throw ValidationError("--segment-size must be 1...4095 MB, got \(segmentSize)") }
        if let d = retainDays, !(d > 0) { throw ValidationError("--retain-days must be > 0, got \(d)") }
        if let b = retainBytes, parseBytes(b) == nil { throw ValidationError("--retain-bytes must be a size such as 500M or 20G, got '\(b)'") }
        guard maxDevices >= 1 else { throw ValidationError("--max-devices must be at least 1") }
        guard maxLinksPerApp >= 1 else { throw ValidationError("--max-links-per-app must be at least 1") }
    }

    func writerOptions(dropWhenFull: Bool) -> JournalOptions {
        var o = JournalOptions()
        o.batchRecords = journalBatch
        o.flushMilliseconds = journalFlushMs
        o.lz4Acceleration = journalLz4Acceleration
        o.fsync = FsyncPolicy(argument: fsync) ?? o.fsync
        o.segmentBytes = segmentSize << 20
        o.retainSeconds = retainDays.map { $0 * 86_400 }
        o.retainBytes = retainBytes.flatMap(parseBytes)
        o.dropWhenFull = dropWhenFull
        return o
    }

    var limits: StoreLimits {
        var l = StoreLimits()
        l.maxDevices = maxDevices
        l.maxLinksPerApp = maxLinksPerApp
        return l
    }
}

/// `500M`, `20G`, `1024` → bytes.
func parseBytes(_ text: String) -> Int? {
    let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
    var digits = Substring(text)
    var unit = 1
    if let last = digits.last?.uppercased().first, let u = units[last] {
        unit = u
        digits = digits.dropLast()
    }
    guard let n = Int(digits), n > 0 else { return nil }
    let (bytes, overflow) = n.multipliedReportingOverflow(by: unit)
    return overflow ? nil : bytes
}

extension JournalCLIOptions {
    /// The journal session of `--journal` (nil without it); its errors logged and turned into exit codes (64 for a
    /// journal another process holds or a bad directory, 1 otherwise).
    func openSession(dropWhenFull: Bool, log: Logger) throws -> JournalSession? {
        guard let journal else { return nil }
        do {
            return try JournalSession.open(directory: journal, limits: limits,
                                           options: writerOptions(dropWhenFull: dropWhenFull), log: log)
        } catch {
            log.error("\(error.message)")
            throw ExitCode(error.kind == .locked || error.kind == .usage ? 64 : 1)
        }
    }
}
