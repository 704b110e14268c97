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
