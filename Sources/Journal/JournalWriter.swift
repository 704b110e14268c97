import Decode
import Extract
import Rings
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// When the journal makes written records durable, and so when it acknowledges them.
public enum FsyncPolicy: Sendable, Equatable, CustomStringConvertible {
    /// Never: records are acknowledged once written to the kernel. They survive a crash of statetap, not of the
    /// machine (power loss, kernel panic): up to the kernel's dirty-page writeback (~30 s) can be lost.
    case never
    /// After every batch: a record is acknowledged only once its batch is on disk. Survives a machine crash; costs
    /// one fsync per batch.
    case batch
    /// Every `milliseconds`: records are acknowledged at the next periodic fsync. A machine crash loses at most the
    /// records of that interval, none of them acknowledged.
    case interval(milliseconds: Int)

    /// Parses `never`, `batch` or `interval:MS`.
    public init?(argument: String) {
        switch argument {
        case "never": self = .never
        case "batch": self = .batch
        default:
            guard argument.hasPrefix("interval:"), let ms = Int(argument.dropFirst(9)), ms > 0, ms <= 3_600_000
            else { return nil }
            self = .interval(milliseconds: ms)
        }
    }

    public var description: String {
        switch self {
        case .never: "never"
        case .batch: "batch"
        case .interval(let ms): "interval:\(ms)"
        }
    }
}

/// How a journal writes.
public struct JournalOptions: Sendable {
    /// A batch (one LZ4 frame) closes at this many records, …
    public var batchRecords = 4096
    /// … or this many bytes of records, …
    public var batchBytes = 1 << 20
    /// … or this long after its first record.
    public var flushMilliseconds = 200
    public var fsync = FsyncPolicy.interval(milliseconds: 1000)
    /// LZ4's acceleration (1 is its default; higher is faster and compresses less).
    public var lz4Acceleration = 1
    /// A segment is closed (and indexed) once it reaches this size.
    public var segmentBytes = 64 << 20
    /// Closed segments whose last write is older than this are removed.
    public var retainSeconds: Double?
    /// Oldest closed segments are removed while the journal is larger than this.
    public var retainBytes: Int?
    /// Records waiting for the journal thread; past it, records are dropped and counted (`dropWhenFull`) or the
    /// producer waits (replay of a file: nothing may be lost).
    public var queueCapacity = 65536
    public var dropWhenFull = true
    /// Seconds between write attempts while the disk is full.
    public var diskFullRetrySeconds: Double = 1

    public init() {}
}

/// What a journal writer counted; read at any time from any thread.
public struct JournalStats: Sendable, Equatable {
    public var appended: UInt64 = 0
    public var written: UInt64 = 0
    public var acknowledged: UInt64 = 0
    public var batches: UInt64 = 0
    public var rawBytes: UInt64 = 0
    public var compressedBytes: UInt64 = 0
    public var droppedQueueFull: UInt64 = 0
    public var droppedDiskFull: UInt64 = 0
    public var droppedWriteError: UInt64 = 0
    public var fsyncs: UInt64 = 0
    public var segmentsClosed: UInt64 = 0
    public var segmentsRemoved: UInt64 = 0
    public var diskFullEpisodes: UInt64 = 0
    public var diskFull = false
    /// CPU time the journal thread has used (CLOCK_THREAD_CPUTIME_ID): what its work costs on one core, whatever
    /// else the machine runs.
    public var threadCPUNanoseconds: UInt64 = 0
}

/// What opening a journal found and repaired.
public struct RecoveryReport: Sendable {
    public var segments = 0
    public var tailSegment: String?
    /// Bytes cut from the end of the last segment (a batch torn by a crash).
    public var cutBytes = 0
    public var damages: [JournalDamage] = []
    public var indexesRebuilt = 0
    public var removedEmpty = 0
    /// Segments removed to settle a compaction a crash interrupted (its partial copy, or the old segments of a
    /// finished one).
    public var compactionRemoved = 0
}

/// Damage found in a segment.
public struct JournalDamage: Sendable, Equatable, CustomStringConvertible {
    public let segment: String
    public let offset: Int
    public let reason: String
    public var description: String { "\(segment) at byte \(offset): \(reason)" }
}

/// Appends records to a journal directory from one producer thread (the pipeline's sink), without ever blocking
/// it when `dropWhenFull`: records go on an SPSC ring, the journal thread batches them into LZ4 frames, writes,
/// fsyncs by policy, rotates and indexes segments, applies retention, and survives a full disk (drops counted,
/// writing resumes by itself).
public final class JournalWriter: @unchecked Sendable {
    public let directory: String
    public let options: JournalOptions
    public let recovery: RecoveryReport
    /// The number of the first segment this writer creates.
    public let firstSegmentNumber: UInt64
    /// Called on the journal thread with every record it takes (written, or dropped for a full disk): the state
    /// store follows the traffic even when the disk does not.
    private let observer: (@Sendable (JournalRecord) -> Void)?
    /// Called on the journal thread when a segment has closed (fsync'd, indexed), with its number: every record
    /// the observer was given up to then is in that segment or an earlier one (the state store's checkpoint).
    private let segmentClosed: (@Sendable (UInt64) -> Void)?
    private let log: @Sendable (String) -> Void

    private let ring: SPSCRing<JournalRecord>
    private let lockFD: Int32
    private var thread: PosixThread?
    private let stopping = Atomic<Bool>(false)
    private let statsLock = Mutex(JournalStats())
    // Producer-side counters (the sink thread only).
    private var appendedLocal: UInt64 = 0
    private var droppedQueueFullLocal: UInt64 = 0
    private let producerCounts = Atomic<UInt64>(0)
    private let producerDrops = Atomic<UInt64>(0)
    /// Markers from threads other than the producer (the control plane, the agent): few, so a lock, which the
    /// journal thread takes only when `markersPending` says there is something. The packet path never touches it.
    private let markers = Mutex<[JournalRecord]>([])
    private let markersPending = Atomic<Int>(0)

    // Journal-thread state.
    private var segmentNumber: UInt64
    private var fd: Int32 = -1
    private var segmentLength = 0
    /// The segment's devices, and for each written batch its devices: (device number << 32 | batch number), grouped
    /// into the index when the segment closes (appending to one list per device per batch cost more than the rest
    /// of the bookkeeping together).
    private var segmentDevices = DeviceSet(capacity: 8192)
    private var segmentPairs: [UInt64] = []
    private var segmentBatchOffsets: [UInt32] = []
    private var segmentFirst: UInt64 = .max
    private var segmentLast: UInt64 = 0
    private var batch = ByteWriter(capacity: 1 << 16)
    /// Envelope and compressed frame of the batch being written (reused).
    private var output: [UInt8] = []
    private var batchRecords = 0
    private var batchFirst: UInt64 = .max
    private var batchLast: UInt64 = 0
    private var batchDevices = DeviceSet(capacity: 8192)
    /// The device of the record before (a run of one device's records is inserted once).
    private var lastDevice: IPAddress?
    private var batchStarted: UInt64 = 0
    private var unsynced = false
    /// Records written but never to be acknowledged (their fsync failed).
    private var unacknowledgeable: UInt64 = 0
    private var lastSync: UInt64 = 0
    private var retryAfter: UInt64 = 0
    private var stats = JournalStats()

    /// Opens (creating if needed) the journal in `directory`: takes its lock, verifies the last segment and cuts a
    /// torn tail, indexes segments left unindexed, applies retention. Writing starts with `start()`.
    public init(directory: String, options: JournalOptions = JournalOptions(),
                observer: (@Sendable (JournalRecord) -> Void)? = nil,
                segmentClosed: (@Sendable (UInt64) -> Void)? = nil,
                log: @escaping @Sendable (String) -> Void = { _ in }) throws(JournalError)
    {
        self.directory = directory
        self.options = options
        self.observer = observer
        self.segmentClosed = segmentClosed
        self.log = log
        try Files.makeDirectory(directory)
        lockFD = try Files.lock(directory)
        do throws(JournalError) {
            var report = RecoveryReport()
            segmentNumber = try Self.recover(directory: directory, report: &report) + 1
            firstSegmentNumber = segmentNumber
            recovery = report
        } catch {
            close(lockFD)
            throw error
        }
        ring = SPSCRing(capacity: options.queueCapacity)
        stats.segmentsRemoved = UInt64(applyRetention())
    }

    deinit {
        if fd >= 0 { close(fd) }
        close(lockFD)
    }

    /// Starts the journal thread.
    /// Starts the journal thread. `first` runs on it before any queued record is taken (rebuilding the state
    /// store from the journal: nothing is written to the journal until it returns, so it reads exactly what was
    /// there at start, and records appended meanwhile wait in the queue, or are dropped and counted when it is
    /// full and `dropWhenFull`). The caller does not wait for it.
    public func start(first: (@Sendable () -> Void)? = nil) {
        precondition(thread == nil, "JournalWriter.start called twice")
        thread = PosixThread(name: "statetap-journal", cpu: nil) { [self] in
            first?()
            run()
        }
    }

    /// Queues a record (one producer thread only). False when it was dropped because the queue was full.
    /// Consuming: the record moves to the journal thread, which releases it; a copy would retain each of its strings
    /// here and release them there, every one a cache line passed between the two cores.
    @discardableResult
    public func append(_ record: consuming JournalRecord) -> Bool {
        var pending: JournalRecord? = consume record
        var backoff = Backoff()
        while let r = pending.take() {
            guard let back = ring.enqueue(r) else {
                appendedLocal &+= 1
                producerCounts.store(appendedLocal, ordering: .relaxed)
                return true
            }
            if options.dropWhenFull {
                droppedQueueFullLocal &+= 1
                producerDrops.store(droppedQueueFullLocal, ordering: .relaxed)
                return false
            }
            pending = back
            backoff.wait()
        }
        return true
    }

    /// Queues a migration or plan marker from any thread (never dropped; the journal thread writes it in its next
    /// round, after what the producer queued before it).
    public func appendMarker(_ record: JournalRecord) {
        markers.withLock { $0.append(record) }
        markersPending.add(1, ordering: .releasing)
    }

    /// Writes what is queued, closes and indexes the segment, and stops the thread.
    public func finish() {
        stopping.store(true, ordering: .releasing)
        thread?.join()
        thread = nil
    }

    /// A snapshot of the counters.
    public var currentStats: JournalStats {
        var s = statsLock.withLock { $0 }
        s.appended = producerCounts.load(ordering: .relaxed)
        s.droppedQueueFull = producerDrops.load(ordering: .relaxed)
        return s
    }

    // MARK: - The journal thread

    private func run() {
        var idle = Backoff(sleepNanoseconds: 1_000_000)
        while true {
            let stop = stopping.load(ordering: .acquiring)
            var taken = ring.dequeueBatch(maxCount: 512) { take($0) }
            if markersPending.load(ordering: .acquiring) > 0 {
                let pending = markers.withLock { m in
                    defer { m.removeAll() }
                    return m
                }
                markersPending.subtract(pending.count, ordering: .relaxed)
                for r in pending { take(r) }
                taken += pending.count
            }
            let now = monotonicNanoseconds()
            if batchRecords > 0 && now &- batchStarted >= UInt64(options.flushMilliseconds) * 1_000_000 {
                writeBatch(now: now)
            }
            if case .interval(let ms) = options.fsync, unsynced, now &- lastSync >= UInt64(ms) * 1_000_000 {
                syncSegment(now: now)
            }
            publishStats()
            if taken > 0 { idle.reset(); continue }
            if stop && ring.consumerAvailableCount == 0 && markersPending.load(ordering: .acquiring) == 0 { break }
            idle.wait()
        }
        if batchRecords > 0 { writeBatch(now: monotonicNanoseconds()) }
        closeSegment()
        publishStats()
    }

    private func take(_ record: consuming JournalRecord) {
        if batchRecords == 0 { batchStarted = monotonicNanoseconds() }
        if let observer { observer(record) }
        let (device, ts) = record.encode(into: &batch)
        batchRecords += 1
        batchFirst = min(batchFirst, ts)
        batchLast = max(batchLast, ts)
        if device != lastDevice {
            batchDevices.insert(device)
            lastDevice = device
        }
        if batchRecords >= options.batchRecords || batch.count >= options.batchBytes {
            writeBatch(now: monotonicNanoseconds())
        }
    }

    private func resetBatch() {
        batch.removeAll()
        batchRecords = 0
        batchFirst = .max
        batchLast = 0
        batchDevices.removeAll()
        lastDevice = nil
    }

    private func writeBatch(now: UInt64) {
        defer { resetBatch() }
        if stats.diskFull && now < retryAfter {
            stats.droppedDiskFull &+= UInt64(batchRecords)
            return
        }
        // Envelope and frame in one buffer, reused: the frame is compressed after the envelope's room.
        let frameLength: Int
        do throws(JournalError) {
            frameLength = try batch.withUnsafeBytes { raw throws(JournalError) in
                try LZ4Frame.compress(raw, into: &output, prefix: SegmentFormat.envelopeSize,
                                      acceleration: options.lz4Acceleration)
            }
        } catch {
            stats.droppedWriteError &+= UInt64(batchRecords)
            log("journal: \(error); \(batchRecords) records dropped")
            return
        }
        let envelope = SegmentFormat.envelope(.init(frameLength: frameLength, records: batchRecords,
                                                    rawLength: batch.count, firstTimestamp: batchFirst,
                                                    lastTimestamp: batchLast))
        output.withUnsafeMutableBytes { $0.copyBytes(from: envelope) }
        let total = envelope.count + frameLength
        do throws(JournalError) {
            try openSegmentIfNeeded()
            let offset = segmentLength
            try Files.writeAll(fd, output, count: total, path: segmentPath)
            segmentLength += total
            let batchNumber = UInt64(segmentBatchOffsets.count)
            segmentBatchOffsets.append(UInt32(offset))
            for d in batchDevices.members {
                segmentPairs.append(UInt64(segmentDevices.insert(d)) << 32 | batchNumber)
            }
            segmentFirst = min(segmentFirst, batchFirst)
            segmentLast = max(segmentLast, batchLast)
            stats.written &+= UInt64(batchRecords)
            stats.batches &+= 1
            stats.rawBytes &+= UInt64(batch.count)
            stats.compressedBytes &+= UInt64(total)
            unsynced = true
            if stats.diskFull {
                stats.diskFull = false
                log("journal: writing again (\(stats.droppedDiskFull) records were dropped while the disk was full)")
            }
            switch options.fsync {
            case .never: stats.acknowledged = stats.written &- unacknowledgeable
            case .batch: syncSegment(now: now)
            case .interval: break
            }
            if segmentLength >= options.segmentBytes {
                closeSegment()
                stats.segmentsRemoved &+= UInt64(applyRetention())
            }
        } catch {
            // Whatever part of the batch reached the file is cut, so the segment ends at a whole batch.
            if fd >= 0 {
                do {
                    try Files.truncate(fd, to: segmentLength, path: segmentPath)
                } catch {
                    // The file position is past bytes that are not a whole batch: this segment ends here.
                    log("journal: \(error.message); continuing in a new segment")
                    closeSegment()
                }
            }
            if error.kind == .diskFull {
                stats.droppedDiskFull &+= UInt64(batchRecords)
                if !stats.diskFull {
                    stats.diskFull = true
                    stats.diskFullEpisodes &+= 1
                    log("journal: disk full (\(error.message)); records are dropped and counted until space returns, "
                        + "capture goes on; retrying every \(options.diskFullRetrySeconds) s")
                }
                retryAfter = now &+ UInt64(options.diskFullRetrySeconds * 1e9)
            } else {
                stats.droppedWriteError &+= UInt64(batchRecords)
                log("journal: \(error.message); \(batchRecords) records dropped")
                retryAfter = now &+ UInt64(options.diskFullRetrySeconds * 1e9)
            }
        }
    }

    private var segmentPath: String { directory + "/" + SegmentFormat.fileName(segmentNumber) }

    private func openSegmentIfNeeded() throws(JournalError) {
        guard fd < 0 else { return }
        let path = segmentPath
        let newFD = try Files.open(path, flags: O_WRONLY | O_CREAT | O_EXCL)
        let header = SegmentFormat.header(segment: segmentNumber)
        do throws(JournalError) {
            try Files.writeAll(newFD, header, path: path)
            try Files.sync(newFD, path: path)
        } catch {
            close(newFD)
            Files.remove(path)
            throw error
        }
        Files.syncDirectory(directory)
        fd = newFD
        segmentLength = header.count
        segmentDevices.removeAll()
        segmentPairs.removeAll(keepingCapacity: true)
        segmentBatchOffsets.removeAll(keepingCapacity: true)
        segmentFirst = .max
        segmentLast = 0
    }

    private func syncSegment(now: UInt64) {
        guard fd >= 0, unsynced else { return }
        lastSync = now
        do throws(JournalError) {
            try Files.sync(fd, path: segmentPath)
            stats.fsyncs &+= 1
            stats.acknowledged = stats.written &- unacknowledgeable
            unsynced = false
        } catch {
            // After a failed fsync the kernel may have dropped the dirty pages and will not say so again: what was
            // written since the last good fsync is never acknowledged (counted as lost), and the segment is closed
            // so later records go to a new file whose fsyncs mean something.
            let lost = stats.written &- unacknowledgeable &- stats.acknowledged
            unacknowledgeable &+= lost
            stats.droppedWriteError &+= lost
            log("journal: \(error.message); \(lost) written records may not be on disk and are not acknowledged; "
                + "continuing in a new segment")
            unsynced = false
            closeSegment()
        }
    }

    /// Device → offsets of the batches holding its records, from the pairs written batch by batch (a counting
    /// sort: pairs are in batch order, so each device's offsets come out in file order).
    private func groupedSegmentIndex() -> [IPAddress: [UInt32]] {
        let devices = segmentDevices.members
        var counts = [Int](repeating: 0, count: devices.count)
        for p in segmentPairs { counts[Int(p >> 32)] += 1 }
        var result: [IPAddress: [UInt32]] = [:]
        result.reserveCapacity(devices.count)
        var lists = counts.map { n -> [UInt32] in
            var a: [UInt32] = []
            a.reserveCapacity(n)
            return a
        }
        for p in segmentPairs {
            lists[Int(p >> 32)].append(segmentBatchOffsets[Int(p & 0xffff_ffff)])
        }
        for (i, d) in devices.enumerated() { result[d] = lists[i] }
        return result
    }

    /// Closes the segment being written: fsync, then its index.
    private func closeSegment() {
        guard fd >= 0 else { return }
        syncSegment(now: monotonicNanoseconds())
        guard fd >= 0 else { return }  // a failed fsync closed it already
        close(fd)
        fd = -1
        let index = SegmentIndex(segmentLength: segmentLength, firstTimestamp: segmentFirst,
                                 lastTimestamp: segmentLast,
                                 batches: groupedSegmentIndex())
        do {
            try Files.writeAtomically(directory + "/" + SegmentFormat.indexName(segmentNumber), index.encoded())
        } catch {
            log("journal: cannot write the index of \(SegmentFormat.fileName(segmentNumber)): \(error.message) "
                + "(readers scan the segment; the index is rebuilt at the next start)")
        }
        stats.segmentsClosed &+= 1
        segmentClosed?(segmentNumber)
        segmentNumber += 1
        segmentLength = 0
    }

    private func publishStats() {
        var ts = timespec()
        if clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0 {
            stats.threadCPUNanoseconds = UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
        }
        let s = stats
        statsLock.withLock { $0 = s }
    }

    /// Removes closed segments past the retention limits; returns how many.
    private func applyRetention() -> Int {
        guard options.retainSeconds != nil || options.retainBytes != nil,
              let names = try? Files.list(directory) else { return 0 }
        let closed = names.compactMap { SegmentFormat.number(ofFile: $0) }.filter { $0 < segmentNumber }.sorted()
        var sizes = closed.map { Files.size(directory + "/" + SegmentFormat.fileName($0)) ?? 0 }
        var total = sizes.reduce(0, +) + segmentLength
        var removed = 0
        let now = Int(time(nil))
        for (i, n) in closed.enumerated() {
            let path = directory + "/" + SegmentFormat.fileName(n)
            let tooOld = options.retainSeconds.map { Double(now - (Files.modificationTime(path) ?? now)) > $0 } ?? false
            let tooBig = options.retainBytes.map { total > $0 } ?? false
            guard tooOld || tooBig else { continue }
            Files.remove(path)
            Files.remove(directory + "/" + SegmentFormat.indexName(n))
            total -= sizes[i]
            sizes[i] = 0
            removed += 1
        }
        if removed > 0 { Files.syncDirectory(directory) }
        return removed
    }

    // MARK: - Recovery

    /// Verifies the last segment and cuts its torn tail; indexes segments that have no index. Returns the
    /// highest segment number (0 when there is none).
    static func recover(directory: String, report: inout RecoveryReport) throws(JournalError) -> UInt64 {
        report.compactionRemoved = try CompactionMarker.settle(directory: directory).count
        let names = try Files.list(directory)
        for name in names where name.hasSuffix(".tmp") { Files.remove(directory + "/" + name) }
        var numbers = names.compactMap { SegmentFormat.number(ofFile: $0) }.sorted()
        let decoder = LZ4FrameDecoder()
        if let last = numbers.last {
            let name = SegmentFormat.fileName(last)
            let path = directory + "/" + name
            let bytes = try Files.read(path)
            if bytes.count < SegmentFormat.headerSize {
                // Created, header not yet written: nothing was ever acknowledged in it.
                Files.remove(path)
                Files.remove(directory + "/" + SegmentFormat.indexName(last))
                report.removedEmpty += 1
                numbers.removeLast()
            } else {
                let scan = bytes.withUnsafeBytes { SegmentScan.scan($0, decoder: decoder, depth: .verify) }
                report.tailSegment = name
                for d in scan.damages {
                    report.damages.append(JournalDamage(segment: name, offset: d.offset, reason: d.reason))
                }
                if scan.headerValid && scan.goodEnd < bytes.count {
                    let fd = try Files.open(path, flags: O_WRONLY)
                    defer { close(fd) }
                    try Files.truncate(fd, to: scan.goodEnd, path: path)
                    try Files.sync(fd, path: path)
                    report.cutBytes = bytes.count - scan.goodEnd
                    // The index, if any, described the file before the cut.
                    Files.remove(directory + "/" + SegmentFormat.indexName(last))
                }
            }
        }
        for n in numbers where !names.contains(SegmentFormat.indexName(n))
            || Files.size(directory + "/" + SegmentFormat.indexName(n)) == nil
        {
            // Not fatal (a full disk must not stop the start): readers scan a segment without an index.
            if (try? buildIndex(directory: directory, segment: n, decoder: decoder)) == true { report.indexesRebuilt += 1 }
        }
        report.segments = numbers.count
        return max(numbers.last ?? 0, names.compactMap { SegmentFormat.number(ofFile: $0) }.max() ?? 0)
    }

    /// Scans a segment and writes its index; false when the segment has no valid header.
    @discardableResult
    static func buildIndex(directory: String, segment n: UInt64, decoder: LZ4FrameDecoder) throws(JournalError) -> Bool {
        let bytes = try Files.read(directory + "/" + SegmentFormat.fileName(n))
        var batches: [IPAddress: [UInt32]] = [:]
        let scan = bytes.withUnsafeBytes { raw in
            SegmentScan.scan(raw, decoder: decoder, depth: .devices, visitDevices: { offset, devices in
                for d in devices { batches[d, default: []].append(UInt32(offset)) }
            })
        }
        guard scan.headerValid else { return false }
        let index = SegmentIndex(segmentLength: bytes.count, firstTimestamp: scan.firstTimestamp,
                                 lastTimestamp: scan.lastTimestamp, batches: batches)
        try Files.writeAtomically(directory + "/" + SegmentFormat.indexName(n), index.encoded())
        return true
    }
}
