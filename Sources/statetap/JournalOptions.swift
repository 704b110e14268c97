import Rings
import Extract
import ArgumentParser
import Decode
import Journal
import Logging
import Pipeline
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

/// An open journal and its state store for one run of `replay` or `capture`.
final class JournalSession: Sendable {
    let writer: JournalWriter
    let store: StateStore
    let checkpointer: StoreCheckpointer

    /// Opens the journal (recovery), rebuilds the store from it, starts the journal thread. Nil without `--journal`.
    static func open(_ o: JournalCLIOptions, dropWhenFull: Bool, log: Logger) throws -> JournalSession? {
        guard let directory = o.journal else { return nil }
        let store = StateStore(limits: o.limits)
        let checkpointer = StoreCheckpointer(store: store, directory: directory, log: { log.warning("\($0)") })
        let writer: JournalWriter
        do {
            // Each closed segment checkpoints the store, so the next start reads only the segments after it.
            writer = try JournalWriter(directory: directory, options: o.writerOptions(dropWhenFull: dropWhenFull),
                                       observer: { store.apply($0) },
                                       segmentClosed: { checkpointer.segmentClosed($0) },
                                       log: { log.warning("\($0)") })
        } catch {
            log.error("\(error.message)")
            throw ExitCode(error.kind == .locked || error.kind == .usage ? 64 : 1)
        }
        let r = writer.recovery
        if r.cutBytes > 0 {
            log.warning("journal: the last segment \(r.tailSegment ?? "?") ended in a torn batch: \(r.cutBytes) bytes cut")
        }
        for d in r.damages { log.warning("journal: damage in \(d)") }
        if r.indexesRebuilt > 0 { log.notice("journal: \(r.indexesRebuilt) segment index(es) rebuilt") }
        let session = JournalSession(writer: writer, store: store, checkpointer: checkpointer)
        // The store is rebuilt on the journal thread while capture starts (a large journal takes minutes to
        // replay: packets are not to wait for it); new records queue behind it.
        let segments = r.segments, known = r.damages, firstNew = writer.firstSegmentNumber
        writer.start(first: {
            let started = monotonicNanoseconds()
            var rebuilt = 0
            // The newest checkpoint first; then only the segments written after it.
            var after: UInt64 = 0
            switch StoreCheckpoint.restore(into: store, directory: directory, firstNewSegment: firstNew) {
            case .checkpoint(let c):
                after = c.segment
                session.fromCheckpoint.store(Int(store.stats.recordsApplied), ordering: .releasing)
                log.info("journal \(directory): state store checkpoint of segments up to \(c.segment) loaded (\(c.devices) devices, \(c.bytes) bytes)")
            case .none:
                break
            case .refused(let why):
                log.warning("journal: the state store checkpoint is not used: \(why); the store is rebuilt from every record")
            }
            do throws(JournalError) {
                let report = try JournalReader(directory: directory).read(afterSegment: after) { record in
                    store.apply(record)
                    rebuilt += 1
                }
                for d in report.damages where !known.contains(d) { log.warning("journal: damage in \(d) (skipped)") }
            } catch {
                log.error("journal: the state store could not be rebuilt: \(error.message); it holds what was read before")
            }
            session.rebuilt.store(rebuilt, ordering: .releasing)
            let seconds = Double(monotonicNanoseconds() &- started) / 1e9
            let source = after > 0 ? "its checkpoint and the \(rebuilt) records after it" : "\(rebuilt) records"
            log.info("journal \(directory): \(segments) segment(s), state store rebuilt from \(source) (\(store.stats.devices) devices) in \((seconds * 100).rounded() / 100) s")
        })
        return session
    }

    /// Records replayed into the store at start (read when the journal thread has finished).
    private let rebuilt = Atomic<Int>(0)
    var rebuiltRecords: Int { rebuilt.load(ordering: .acquiring) }
    /// Records the store held from its checkpoint at start.
    private let fromCheckpoint = Atomic<Int>(0)

    private init(writer: JournalWriter, store: StateStore, checkpointer: StoreCheckpointer) {
        self.writer = writer
        self.store = store
        self.checkpointer = checkpointer
    }

    /// Called on the pipeline's sink thread.
    func append(_ e: consuming StateEvent) { writer.append(.event(e)) }

    /// Records given to the journal that it did not write (disk full, write errors, a full queue), and all given.
    var lostRecords: (lost: UInt64, appended: UInt64, diskFull: UInt64, writeError: UInt64, queueFull: UInt64) {
        let j = writer.currentStats
        return (j.droppedDiskFull + j.droppedWriteError + j.droppedQueueFull, j.appended, j.droppedDiskFull,
                j.droppedWriteError, j.droppedQueueFull)
    }

    /// Writes what is queued and closes the segment; the summary's `journal` section.
    func finish() -> [(String, Any)] {
        writer.finish()
        checkpointer.finish()
        let c = checkpointer.written
        let j = writer.currentStats
        let st = store.stats
        let ratio = j.compressedBytes > 0 ? Double(j.rawBytes) / Double(j.compressedBytes) : 0
        return [
            ("directory", writer.directory),
            ("records_appended", j.appended), ("records_written", j.written), ("records_acknowledged", j.acknowledged),
            ("dropped_queue_full", j.droppedQueueFull), ("dropped_disk_full", j.droppedDiskFull),
            ("dropped_write_error", j.droppedWriteError), ("disk_full_episodes", j.diskFullEpisodes),
            ("batches", j.batches), ("raw_bytes", j.rawBytes), ("written_bytes", j.compressedBytes),
            ("compression_ratio", (ratio * 100).rounded() / 100), ("fsyncs", j.fsyncs),
            ("segments_closed", j.segmentsClosed), ("segments_removed", j.segmentsRemoved),
            ("fsync_policy", writer.options.fsync.description),
            ("recovery", [("cut_bytes", writer.recovery.cutBytes), ("damages", writer.recovery.damages.count),
                          ("records_from_checkpoint", fromCheckpoint.load(ordering: .acquiring)),
                          ("records_replayed", rebuiltRecords)] as [(String, Any)]),
            ("checkpoints", [("written", c.count), ("last_segment", c.segment), ("last_bytes", c.bytes),
                             ("last_ms", (c.milliseconds * 10).rounded() / 10)] as [(String, Any)]),
            ("state_store", [("devices", st.devices), ("apps", st.apps), ("links", st.links),
                             ("devices_evicted", st.devicesEvicted), ("apps_evicted", st.appsEvicted),
                             ("links_evicted", st.linksEvicted)] as [(String, Any)]),
        ]
    }
}

/// Both consumers of the sink's events: the JSON Lines writer and the journal.
func eventSink(_ writer: EventWriter?, _ journal: JournalSession?) -> (@Sendable (consuming StateEvent) -> Void)? {
    switch (writer, journal) {
    case (nil, nil): return nil
    case (let w?, nil): return { w.write($0) }
    case (nil, let j?): return { j.append($0) }
    case (let w?, let j?): return { w.write($0); j.append($0) }
    }
}
