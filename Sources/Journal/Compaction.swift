#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Makes compaction crash-atomic. Compaction copies the records of old segments into new ones, then removes the
/// old: a crash between the two would leave every record twice. So it first writes this marker (`COMPACTION`,
/// written atomically and fsync'd): "copying" names the old segments and the first new one; once every copied
/// record is on disk the marker says "done". Whoever opens the journal next settles it:
/// - copying: the copy is incomplete; the new segments (from `firstNew` on) are removed, the old ones stay;
/// - done: the copy is complete; the old segments still there are removed.
/// Readers, which never change the directory, see the same thing: while copying, only segments before
/// `firstNew`; once done, every segment but the old ones.
public struct CompactionMarker: Sendable, Equatable {
    public enum State: String, Sendable { case copying, done }
    public var state: State
    public var old: [UInt64]
    public var firstNew: UInt64

    public init(state: State, old: [UInt64], firstNew: UInt64) {
        self.state = state; self.old = old; self.firstNew = firstNew
    }

    static let fileName = "COMPACTION"

    var text: String {
        "statetap-compaction 1\nstate \(state.rawValue)\nfirst-new \(firstNew)\nold \(old.map(String.init).joined(separator: " "))\n"
    }

    init?(text: String) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 4, lines[0] == "statetap-compaction 1",
              lines[1].hasPrefix("state "), let state = State(rawValue: String(lines[1].dropFirst(6))),
              lines[2].hasPrefix("first-new "), let firstNew = UInt64(lines[2].dropFirst(10)),
              lines[3].hasPrefix("old") else { return nil }
        var old: [UInt64] = []
        for word in lines[3].dropFirst(3).split(separator: " ") {
            guard let n = UInt64(word) else { return nil }
            old.append(n)
        }
        self.init(state: state, old: old, firstNew: firstNew)
    }

    /// The marker in `directory`, nil when there is none; an error when it cannot be read or parsed (the
    /// journal's segments cannot be told apart then: nothing is guessed).
    public static func read(directory: String) throws(JournalError) -> CompactionMarker? {
        let path = directory + "/" + fileName
        guard Files.size(path) != nil else { return nil }
        let bytes = try Files.read(path)
        guard let m = CompactionMarker(text: String(decoding: bytes, as: UTF8.self)) else {
            throw JournalError(.corrupt, "\(path) is not a compaction marker statetap can read; "
                               + "move it away only after checking which segments hold duplicates")
        }
        return m
    }

    /// Writes the marker durably (atomic rename, then the directory fsync'd).
    public func write(directory: String) throws(JournalError) {
        try Files.writeAtomically(directory + "/" + Self.fileName, Array(text.utf8))
        Files.syncDirectory(directory)
    }

    public static func remove(directory: String) {
        Files.remove(directory + "/" + fileName)
        Files.syncDirectory(directory)
    }

    /// The segments a reader should see among `numbers`.
    func visible(_ numbers: [UInt64]) -> [UInt64] {
        switch state {
        case .copying: numbers.filter { $0 < firstNew }
        case .done: numbers.filter { !old.contains($0) }
        }
    }

    /// Settles the marker (the caller holds the journal's lock): removes what the marker says is not part of
    /// the journal, then the marker. Returns the segments removed.
    @discardableResult
    public static func settle(directory: String) throws(JournalError) -> [UInt64] {
        guard let m = try read(directory: directory) else { return [] }
        let numbers = try Files.list(directory).compactMap { SegmentFormat.number(ofFile: $0) }
        let gone = numbers.filter { !m.visible([$0]).contains($0) }
        for n in gone {
            Files.remove(directory + "/" + SegmentFormat.fileName(n))
            Files.remove(directory + "/" + SegmentFormat.indexName(n))
        }
        Files.syncDirectory(directory)
        remove(directory: directory)
        return gone
    }
}

/// What `compactJournal` did.
public struct CompactionReport: Sendable {
    public var segmentsBefore = 0
    public var bytesBefore = 0
    public var segmentsAfter = 0
    public var bytesAfter = 0
    /// Records copied into the new segments (every one acknowledged, fsync'd).
    public var recordsKept = 0
    /// Damaged batches that were left out, with where they were.
    public var damagedBatchesDropped: [JournalDamage] = []
}

/// Rewrites the journal in `directory` into full segments of `segmentBytes`: small segments merged, damaged
/// batches dropped (reported), every index rebuilt. Takes the journal's lock (no writer may hold it); removes the
/// state store checkpoint (the copy moves old records into new segments, which it would count twice). Crash-atomic
/// through `CompactionMarker`; a copy that does not get every record on disk is undone and the old segments kept.
public func compactJournal(directory: String, segmentBytes: Int,
                           log: @escaping @Sendable (String) -> Void) throws(JournalError) -> CompactionReport
{
    let reader = try JournalReader(directory: directory)
    // Records of a type or version this binary does not know would not survive a rewrite.
    let unknown = try reader.verify().unknownRecords
    guard unknown == 0 else {
        throw JournalError(.usage, "\(unknown) records were written by a newer statetap: compact with that version")
    }
    var report = CompactionReport()
    let before = try reader.segments()
    report.segmentsBefore = before.count
    report.bytesBefore = segmentFileBytes(directory, before)
    var options = JournalOptions()
    options.segmentBytes = segmentBytes
    options.dropWhenFull = false
    options.fsync = .batch
    let writer = try JournalWriter(directory: directory, options: options, log: log)
    let old = try reader.segments()  // after recovery: what gets rewritten
    // Crash-atomic: the marker says which segments are the copy until every record is on disk, then which are the
    // originals; whoever opens the journal after a crash settles it.
    var marker = CompactionMarker(state: .copying, old: old, firstNew: writer.firstSegmentNumber)
    // The copy puts old records in new segments, after any state store checkpoint's: it would count them twice, so
    // it goes first (the next start rebuilds the store from every record, and checkpoints again).
    StoreCheckpoint.remove(directory: directory)
    try marker.write(directory: directory)
    writer.start()
    var copied = 0
    do {
        for n in old {
            report.damagedBatchesDropped += try reader.readSegment(n) { writer.append($0); copied += 1 }.damages
        }
    } catch {
        writer.finish()
        _ = try CompactionMarker.settle(directory: directory)  // removes the partial copy (marker: copying)
        throw error
    }
    writer.finish()
    let stats = writer.currentStats
    // The old segments go only once every copied record is acknowledged (fsync'd: the policy is batch).
    guard stats.acknowledged == UInt64(copied), stats.droppedWriteError == 0 else {
        _ = try CompactionMarker.settle(directory: directory)
        throw JournalError(.io, "compaction made \(stats.acknowledged) of \(copied) records durable; it was undone, the old segments are kept")
    }
    marker.state = .done
    try marker.write(directory: directory)
    _ = try CompactionMarker.settle(directory: directory)
    let after = try reader.segments()
    report.segmentsAfter = after.count
    report.bytesAfter = segmentFileBytes(directory, after)
    report.recordsKept = copied
    return report
}

/// The bytes of segments `numbers` in `directory` (0 for one that is gone).
private func segmentFileBytes(_ directory: String, _ numbers: [UInt64]) -> Int {
    numbers.reduce(0) { total, n in
        var st = stat()
        return total + (stat(directory + "/" + SegmentFormat.fileName(n), &st) == 0 ? Int(st.st_size) : 0)
    }
}
