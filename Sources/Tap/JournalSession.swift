import Extract
import Journal
import Logging
import Rings
import Synchronization

/// An open journal and its state store for one run of `replay` or `capture`.
public final class JournalSession: Sendable {
    public let writer: JournalWriter
    public let store: StateStore
    let checkpointer: StoreCheckpointer

    /// Opens the journal in `directory` (recovery: a torn tail cut, indexes rebuilt, each logged), starts the
    /// journal thread, and rebuilds the store on it from the newest checkpoint and the segments after it, while the
    /// caller goes on (events meanwhile wait in the journal's queue).
    public static func open(directory: String, limits: StoreLimits, options: JournalOptions,
                            log: Logger) throws(JournalError) -> JournalSession {
        let store = StateStore(limits: limits)
        let checkpointer = StoreCheckpointer(store: store, directory: directory, log: { log.warning("\($0)") })
        // Each closed segment checkpoints the store, so the next start reads only the segments after it.
        let writer = try JournalWriter(directory: directory, options: options,
                                       observer: { store.apply($0) },
                                       segmentClosed: { checkpointer.segmentClosed($0) },
                                       log: { log.warning("\($0)") })
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
    public var rebuiltRecords: Int { rebuilt.load(ordering: .acquiring) }
    /// Records the store held from its checkpoint at start.
    private let fromCheckpoint = Atomic<Int>(0)

    private init(writer: JournalWriter, store: StateStore, checkpointer: StoreCheckpointer) {
        self.writer = writer
        self.store = store
        self.checkpointer = checkpointer
    }

    /// Called on the pipeline's sink thread.
    public func append(_ e: consuming StateEvent) { writer.append(.event(e)) }

    /// Records given to the journal that it did not write (disk full, write errors, a full queue), and all given.
    public var lostRecords: (lost: UInt64, appended: UInt64, diskFull: UInt64, writeError: UInt64, queueFull: UInt64) {
        let j = writer.currentStats
        return (j.droppedDiskFull + j.droppedWriteError + j.droppedQueueFull, j.appended, j.droppedDiskFull,
                j.droppedWriteError, j.droppedQueueFull)
    }

    /// Writes what is queued and closes the segment; the summary's `journal` section.
    public func finish() -> [(String, Any)] {
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
public func eventSink(_ writer: EventWriter?, _ journal: JournalSession?) -> (@Sendable (consuming StateEvent) -> Void)? {
    switch (writer, journal) {
    case (nil, nil): return nil
    case (let w?, nil): return { w.write($0) }
    case (nil, let j?): return { j.append($0) }
    case (let w?, let j?): return { w.write($0); j.append($0) }
    }
}
