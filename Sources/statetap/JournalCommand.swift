import Rings
import Extract
import ArgumentParser
import Decode
import Foundation
import Journal
import MigrationAPI
import Pipeline

/// `statetap journal …`: verify, dump, stats, compact.
struct JournalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal",
        abstract: "Inspect and maintain a state journal directory (written by replay/capture --journal).",
        discussion: """
            A journal is a directory of segments (seg-N.stj: LZ4 frames with block and content checksums, one per \
            batch of records, each behind a small envelope) and, for each closed segment, an index (seg-N.idx: \
            which batches hold each device, and the time range). `lz4 -dc seg-N.stj` decompresses a segment.
            """,
        subcommands: [Verify.self, Dump.self, Stats.self, Compact.self, WriteTest.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read every batch, check every checksum; report damage with segment and byte offset.",
            discussion: "Exit status 0 when the journal is intact, 1 when damage was found.")
        @Argument(help: "Journal directory.") var directory: String
        @Flag(help: "Print the result as one JSON object.") var json = false

        func run() throws {
            let v = try openReader(directory).verify()
            let fields: [(String, Any)] = [
                ("segments", v.segments), ("batches", v.batches), ("records", v.records),
                ("unknown_records", v.unknownRecords), ("file_bytes", v.fileBytes), ("raw_bytes", v.rawBytes),
                ("first", v.firstTimestamp.map(isoTime) ?? "none"), ("last", v.lastTimestamp.map(isoTime) ?? "none"),
                ("damages", v.damages.map(\.description)), ("missing_indexes", v.missingIndexes),
                ("in_use", v.inUse),
            ]
            print(json ? jsonObject(fields) : textLines(fields))
            if v.inUse && !v.damages.isEmpty {
                FileHandle.standardError.write(Data("note: a writer holds this journal; damage at the very end of the last segment may be a batch being written\n".utf8))
            }
            if !v.damages.isEmpty { throw ExitCode(1) }
        }
    }

    struct Dump: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print records as JSON Lines (events in the ../shared/EVENTS.md format), filtered by device and time.")
        @Argument(help: "Journal directory.") var directory: String
        @Option(help: "Only this device's records (an IPv4 or IPv6 address).") var device: String?
        @Option(help: "Only records at or after this time (seconds since the epoch, or ISO 8601).") var since: String?
        @Option(help: "Only records at or before this time (seconds since the epoch, or ISO 8601).") var until: String?
        @Flag(help: "Scan every segment instead of using the indexes (to compare).") var noIndex = false

        func run() throws {
            let d = try device.map(parseDevice)
            let from = try since.map { try parseTime($0, "--since") } ?? 0
            let to = try until.map { try parseTime($0, "--until") } ?? .max
            let out = FileHandle.standardOutput
            var buffer = ""
            let report = try openReader(directory).read(device: d, from: from, to: to, useIndex: !noIndex) { r in
                buffer += recordJSON(r)
                buffer += "\n"
                if buffer.utf8.count > 1 << 16 { out.write(Data(buffer.utf8)); buffer = "" }
            }
            out.write(Data(buffer.utf8))
            for damage in report.damages {
                FileHandle.standardError.write(Data("damage (skipped): \(damage)\n".utf8))
            }
            FileHandle.standardError.write(Data(("read \(report.batchesRead) batches, \(report.bytesRead) bytes; "
                + "\(report.segmentsScanned) segments scanned whole, \(report.segmentsSkippedByIndex) skipped by index\n").utf8))
            if !report.damages.isEmpty { throw ExitCode(1) }
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sizes, records per type, time range, compression ratio, devices, per segment.")
        @Argument(help: "Journal directory.") var directory: String
        @Flag(help: "Print the result as one JSON object.") var json = false

        func run() throws {
            let reader = try openReader(directory)
            let v = try reader.verify()
            var devices = Set<IPAddress>()
            _ = try reader.read { devices.insert($0.device) }
            let ratio = v.fileBytes > 0 ? Double(v.rawBytes) / Double(v.fileBytes) : 0
            let types = JournalRecord.RecordType.allCases.map { t -> (String, Any) in
                ("\(t)", v.records_per_type[t] ?? 0)
            }
            let fields: [(String, Any)] = [
                ("segments", v.segments), ("records", v.records), ("records_by_type", types),
                ("devices", devices.count), ("file_bytes", v.fileBytes), ("raw_bytes", v.rawBytes),
                ("compression_ratio", (ratio * 100).rounded() / 100),
                ("first", v.firstTimestamp.map(isoTime) ?? "none"), ("last", v.lastTimestamp.map(isoTime) ?? "none"),
                ("damages", v.damages.count), ("missing_indexes", v.missingIndexes.count),
                ("state_store_checkpoint", checkpoint()),
            ]
            print(json ? jsonObject(fields) : textLines(fields))
        }

        /// The state store checkpoint: the segments it covers, or why a start would not use it.
        private func checkpoint() -> String {
            do throws(JournalError) {
                guard let c = try StoreCheckpoint.inspect(directory: directory) else { return "none" }
                return "segments up to \(c.segment), \(c.devices) devices, \(c.bytes) bytes"
            } catch {
                return "not usable: \(error.message)"
            }
        }
    }

    struct Compact: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rewrite the journal into full segments: small segments merged, damaged batches dropped (reported), every index rebuilt.",
            discussion: "Takes the journal's lock: no capture or replay may be writing to it. Removes the state store checkpoint (the copy moves old records into new segments): the next start rebuilds the store from every record, and checkpoints again.")
        @Argument(help: "Journal directory.") var directory: String
        @Option(help: "Segment size in MB for the rewritten segments.") var segmentSize = 64

        func validate() throws {
            guard (1...4095).contains(segmentSize) else { throw ValidationError("--segment-size must be 1...4095 MB") }
        }

        func run() throws {
            let r = try journalCall { () throws(JournalError) in
                try compactJournal(directory: directory, segmentBytes: segmentSize << 20, log: {
                    FileHandle.standardError.write(Data("\($0)\n".utf8))
                })
            }
            for d in r.damagedBatchesDropped { FileHandle.standardError.write(Data("damaged batch dropped: \(d)\n".utf8)) }
            print("compacted \(r.segmentsBefore) segment(s), \(r.bytesBefore) bytes -> \(r.segmentsAfter) segment(s), \(r.bytesAfter) bytes; \(r.recordsKept) records kept, \(r.damagedBatchesDropped.count) damaged batch(es) dropped")
        }
    }

    /// Appends numbered records and prints the acknowledged count as it grows: the crash tests kill it with
    /// SIGKILL at random moments and check that every acknowledged record survives.
    struct WriteTest: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "write-test", abstract: "Append numbered test records, printing 'acked N' (for crash tests).",
            shouldDisplay: false)
        @Argument var directory: String
        @Option var records = 1_000_000
        @Option var fsync = "batch"
        @Option var batch = 64
        @Option var segmentSize = 1
        @Option var padding = 200
        @Option var lz4Acceleration = JournalOptions().lz4Acceleration
        @Flag(help: "Realistic records (Journal.SampleRecords) instead of numbered ones.") var sample = false
        @Option(help: "With --sample: build this many records first and append them in turn (the writer alone is measured, as in JournalBenchmark). When at least --records, each is appended once and moved, as the pipeline's sink hands its events over; otherwise each append is a copy.")
        var prebuilt = 0

        func run() throws {
            var options = JournalOptions()
            guard let policy = FsyncPolicy(argument: fsync) else { throw ValidationError("bad --fsync") }
            options.fsync = policy
            options.batchRecords = batch
            options.lz4Acceleration = lz4Acceleration
            options.flushMilliseconds = 5
            options.segmentBytes = segmentSize << 20
            options.dropWhenFull = false
            options.diskFullRetrySeconds = 0.2
            let writer = try openWriter(directory, options)
            var test = JournalWriteTest(records: records)
            test.padding = padding
            test.sample = sample
            test.prebuilt = prebuilt
            // Unbuffered: the test reads what was printed before the process was killed.
            test.run(writer) { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
        }
    }
}

/// A journal writer for a command, logging to standard error; its errors as command-line errors.
func openWriter(_ directory: String, _ options: JournalOptions) throws -> JournalWriter {
    do {
        return try JournalWriter(directory: directory, options: options, log: {
            FileHandle.standardError.write(Data("\($0)\n".utf8))
        })
    } catch {
        throw ValidationError(error.message)
    }
}

/// Runs journal code, its error as a command-line error.
func journalCall<T>(_ body: () throws(JournalError) -> T) throws -> T {
    do { return try body() } catch { throw ValidationError(error.message) }
}

func openReader(_ directory: String) throws -> JournalReader {
    do { return try JournalReader(directory: directory) } catch { throw ValidationError(error.message) }
}

func parseDevice(_ text: String) throws -> IPAddress {
    guard let a = IPAddress(text) else { throw ValidationError("not an IPv4 or IPv6 address: '\(text)'") }
    return a
}

/// Seconds since the epoch (with decimals) or an RFC 3339 date-time, as nanoseconds. Bounded: a number past what
/// nanoseconds since 1970 hold in 64 bits (year 2554) is refused, not trapped on.
func parseTime(_ text: String, _ flag: String) throws -> UInt64 {
    if let s = Double(text), s.isFinite, s >= 0 {
        guard s < 18_000_000_000 else { throw ValidationError("\(flag): \(quoted(text)) seconds is past the year 2500") }
        return UInt64(s * 1e9)
    }
    if let d = parseRFC3339(text) {
        let s = max(0, d.timeIntervalSince1970)
        guard s < 18_000_000_000 else { throw ValidationError("\(flag): \(quoted(text)) is past the year 2500") }
        return UInt64(s * 1e9)
    }
    throw ValidationError("\(flag) takes seconds since the epoch or an RFC 3339 time such as 2026-11-25T10:00:00Z, got \(quoted(text))")
}

func isoTime(_ ns: UInt64) -> String { rfc3339(Date(timeIntervalSince1970: Double(ns) / 1e9)) }

/// One record as a JSON line: events exactly as `--events jsonl` writes them; markers with a `kind` of their own.
func recordJSON(_ r: JournalRecord) -> String {
    switch r {
    case .event(let e):
        return e.jsonLine()
    case .migration(let m):
        var f: [(String, Any)] = [("kind", "migration"), ("ts", Double(m.timestampNanoseconds) / 1e9),
                                  ("device", m.device.description), ("id", m.id), ("from", m.from), ("to", m.to),
                                  ("status", m.status)]
        if let d = m.detail { f.append(("detail", d)) }
        return jsonObject(f)
    case .plan(let p):
        return jsonObject([("kind", "plan"), ("ts", Double(p.timestampNanoseconds) / 1e9),
                           ("device", p.device.description), ("migration", p.migrationID),
                           ("plan", String(decoding: p.body, as: UTF8.self))])
    }
}

/// Pairs as one JSON object (the summary's encoding).
func jsonObject(_ pairs: [(String, Any)]) -> String { SummaryFormatter.encode(pairs) }

/// Pairs as indented lines (the summary's text form).
func textLines(_ pairs: [(String, Any)]) -> String { SummaryFormatter.render(pairs) }
