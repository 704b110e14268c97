import Decode
#if canImport(Glibc)
import Glibc
#endif

/// What a full verification of a journal found.
public struct JournalVerification: Sendable {
    public var segments = 0
    public var batches = 0
    public var records = 0
    public var unknownRecords = 0
    public var rawBytes = 0
    public var fileBytes = 0
    public var firstTimestamp: UInt64?
    public var lastTimestamp: UInt64?
    public var damages: [JournalDamage] = []
    /// Closed segments without a valid index (reads of one device scan them whole).
    public var missingIndexes: [String] = []
    /// Another process holds the journal's lock: the last segment may be mid-write at its end.
    public var inUse = false
    public var records_per_type: [JournalRecord.RecordType: Int] = [:]
}

/// What a filtered read went through.
public struct JournalReadReport: Sendable {
    public var segmentsScanned = 0
    public var segmentsSkippedByIndex = 0
    public var batchesRead = 0
    public var bytesRead = 0
    public var damages: [JournalDamage] = []
}

/// Reads a journal directory (also while a writer appends to it): verification, and records filtered by device
/// and time, through each closed segment's index when it has one.
public struct JournalReader {
    public let directory: String

    public init(directory: String) throws(JournalError) {
        var st = stat()
        guard stat(directory, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
            throw JournalError(.usage, "no journal directory at \(directory)")
        }
        self.directory = directory
    }

    /// Segment numbers, oldest first.
    public func segments() throws(JournalError) -> [UInt64] {
        let numbers = try Files.list(directory).compactMap { SegmentFormat.number(ofFile: $0) }.sorted()
        // A compaction in progress or interrupted: only the segments that hold each record once.
        guard let marker = try CompactionMarker.read(directory: directory) else { return numbers }
        return marker.visible(numbers)
    }

    /// Whether a writer holds the journal now.
    public var inUse: Bool {
        guard let fd = try? Files.open(directory + "/LOCK", flags: O_RDONLY) else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) != 0 { return true }
        flock(fd, LOCK_UN)
        return false
    }

    /// Reads every batch of every segment and checks every checksum.
    public func verify() throws(JournalError) -> JournalVerification {
        var v = JournalVerification()
        v.inUse = inUse
        let decoder = LZ4FrameDecoder()
        let numbers = try segments()
        for (i, n) in numbers.enumerated() {
            let name = SegmentFormat.fileName(n)
            guard let bytes = try readSegmentFile(name) else { continue }
            let scan = bytes.withUnsafeBytes { SegmentScan.scan($0, decoder: decoder, depth: .verify) }
            var perType: [JournalRecord.RecordType: Int] = [:]
            for t in JournalRecord.RecordType.allCases where scan.perType[Int(t.rawValue)] > 0 {
                perType[t] = scan.perType[Int(t.rawValue)]
            }
            v.segments += 1
            v.batches += scan.batches
            v.records += scan.records
            v.unknownRecords += scan.unknownRecords
            v.rawBytes += scan.rawBytes
            v.fileBytes += bytes.count
            for (t, c) in perType { v.records_per_type[t, default: 0] += c }
            if scan.batches > 0 {
                v.firstTimestamp = min(v.firstTimestamp ?? .max, scan.firstTimestamp)
                v.lastTimestamp = max(v.lastTimestamp ?? 0, scan.lastTimestamp)
            }
            for d in scan.damages { v.damages.append(JournalDamage(segment: name, offset: d.offset, reason: d.reason)) }
            let isLast = i == numbers.count - 1
            if !(isLast && v.inUse), index(n, length: bytes.count) == nil { v.missingIndexes.append(name) }
        }
        return v
    }

    /// A segment's bytes; nil when it is gone (retention removed it while we read).
    private func readSegmentFile(_ name: String) throws(JournalError) -> [UInt8]? {
        do {
            return try Files.read(directory + "/" + name)
        } catch {
            if Files.size(directory + "/" + name) == nil { return nil }
            throw error
        }
    }

    /// The index of segment `n` if it exists, is intact and describes the file as it is (`length` bytes).
    func index(_ n: UInt64, length: Int? = nil) -> SegmentIndex? {
        let path = directory + "/" + SegmentFormat.indexName(n)
        guard let bytes = try? Files.read(path), let index = SegmentIndex(bytes) else { return nil }
        let actual = length ?? Files.size(directory + "/" + SegmentFormat.fileName(n))
        return index.segmentLength == actual ? index : nil
    }

    /// Every record for `device` (all devices when nil) with a timestamp in `from...to`, oldest segment first.
    /// With `useIndex`, closed segments are skipped by their time range and only the batches holding the device
    /// are read; segments without a valid index are scanned whole. `afterSegment`: only the segments numbered
    /// after it (what a state store checkpoint does not hold).
    public func read(device: IPAddress? = nil, from: UInt64 = 0, to: UInt64 = .max, useIndex: Bool = true,
                     afterSegment: UInt64 = 0,
                     visit: (JournalRecord) -> Void) throws(JournalError) -> JournalReadReport
    {
        var report = JournalReadReport()
        let decoder = LZ4FrameDecoder()
        let everything = device == nil && from == 0 && to == .max
        func wanted(_ r: JournalRecord) -> Bool {
            // Reading a record's device or time copies its payload out of the enum: not done when all are wanted.
            everything || (device == nil || r.device == device!) && r.timestampNanoseconds >= from && r.timestampNanoseconds <= to
        }
        for n in try segments() where n > afterSegment {
            let name = SegmentFormat.fileName(n)
            let path = directory + "/" + name
            if useIndex, let index = index(n) {
                if index.lastTimestamp < from || index.firstTimestamp > to {
                    report.segmentsSkippedByIndex += 1
                    continue
                }
                if let device {
                    guard let offsets = index.batches[device] else {
                        report.segmentsSkippedByIndex += 1
                        continue
                    }
                    for offset in offsets {
                        try readBatch(path: path, name: name, offset: Int(offset), device: device, decoder: decoder,
                                      report: &report) {
                            Self.each($0, where: wanted, visit)
                        }
                    }
                    continue
                }
            }
            guard let bytes = try readSegmentFile(name) else { continue }
            report.segmentsScanned += 1
            report.bytesRead += bytes.count
            let scan = bytes.withUnsafeBytes { raw in
                SegmentScan.scan(raw, decoder: decoder, onlyDevice: device) { _, records in
                    Self.each(records, where: wanted, visit)
                }
            }
            report.batchesRead += scan.batches
            for d in scan.damages { report.damages.append(JournalDamage(segment: name, offset: d.offset, reason: d.reason)) }
        }
        return report
    }

    /// Calls `visit` with each wanted record where it lies in `records`: `for r in records` copied each one out,
    /// which retained and released every string of every record (the state store's rebuild reads them all).
    private static func each(_ records: [JournalRecord], where wanted: (JournalRecord) -> Bool,
                             _ visit: (JournalRecord) throws -> Void) rethrows {
        for i in records.indices where wanted(records[i]) { try visit(records[i]) }
    }

    /// Every record of segment `n`, in order (damaged batches reported and skipped).
    public func readSegment(_ n: UInt64, visit: (JournalRecord) -> Void) throws(JournalError) -> JournalReadReport {
        var report = JournalReadReport()
        let name = SegmentFormat.fileName(n)
        let bytes = try Files.read(directory + "/" + name)
        report.segmentsScanned = 1
        report.bytesRead = bytes.count
        let scan = bytes.withUnsafeBytes { raw in
            SegmentScan.scan(raw, decoder: LZ4FrameDecoder()) { _, records in records.forEach(visit) }
        }
        report.batchesRead = scan.batches
        report.damages = scan.damages.map { JournalDamage(segment: name, offset: $0.offset, reason: $0.reason) }
        return report
    }

    private func readBatch(path: String, name: String, offset: Int, device: IPAddress?, decoder: LZ4FrameDecoder,
                           report: inout JournalReadReport, _ body: ([JournalRecord]) -> Void) throws(JournalError)
    {
        let head = try Files.read(path, offset: offset, length: SegmentFormat.envelopeSize)
        guard let e = head.withUnsafeBytes({ SegmentFormat.parseEnvelope($0) }) else {
            report.damages.append(JournalDamage(segment: name, offset: offset, reason: "index points at a damaged envelope"))
            return
        }
        let frame = try Files.read(path, offset: offset + SegmentFormat.envelopeSize, length: e.frameLength)
        report.bytesRead += head.count + frame.count
        report.batchesRead += 1
        let result = frame.withUnsafeBytes { decoder.decompress($0, expectedLength: e.rawLength) }
        switch result {
        case .failure(let damage):
            report.damages.append(JournalDamage(segment: name, offset: offset, reason: "batch unreadable: \(damage.reason)"))
        case .success(let content):
            var unknown = 0
            guard let records = content.withUnsafeBytes({ SegmentFormat.records(in: $0, unknown: &unknown, device: device) })
            else {
                report.damages.append(JournalDamage(segment: name, offset: offset, reason: "batch records do not parse"))
                return
            }
            body(records)
        }
    }
}

extension JournalRecord {
    /// The record's type as stored.
    public var recordType: RecordType {
        switch self {
        case .event(let e): e.kind == .webLink ? .webLink : .serverName
        case .migration: .migration
        case .plan: .plan
        }
    }
}
