import Decode

/// The bytes of a journal segment: a concatenation of LZ4 frames, so `lz4 -dc` reads it.
///
///     segment  := header envelope-and-batch*
///     header   := skippable frame 0x184D2A50, 16 bytes: "STJS" | u32 format version | u64 segment number
///     envelope := skippable frame 0x184D2A51, 36 bytes: "STJB" | u32 batch frame length | u32 records
///                 | u32 raw length | u64 first ts | u64 last ts | u32 CRC-32C of the 32 bytes before it
///     batch    := one LZ4 frame (block and content checksums) holding `records` records back to back
///
/// The envelope says where the next batch starts, so a damaged batch is skipped and the rest stays readable; a
/// damaged envelope is found again by scanning for the next one.
enum SegmentFormat {
    static let headerMagic: UInt32 = 0x184D_2A50
    static let envelopeMagic: UInt32 = 0x184D_2A51
    static let formatVersion: UInt32 = 1
    static let headerSize = 8 + 16
    static let envelopeSize = 8 + 36
    static let segmentTag: [UInt8] = Array("STJS".utf8)
    static let batchTag: [UInt8] = Array("STJB".utf8)

    static func fileName(_ number: UInt64) -> String {
        let digits = String(number)
        return "seg-" + String(repeating: "0", count: max(0, 10 - digits.count)) + digits + ".stj"
    }

    static func indexName(_ number: UInt64) -> String {
        String(fileName(number).dropLast(4)) + ".idx"
    }

    /// The segment number of a file name, nil for other files.
    static func number(ofFile name: String) -> UInt64? {
        guard name.hasPrefix("seg-"), name.hasSuffix(".stj"), name.count >= 18 else { return nil }
        let digits = name.dropFirst(4).dropLast(4)
        guard digits.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
        return UInt64(digits)
    }

    static func header(segment: UInt64) -> [UInt8] {
        var w = ByteWriter()
        w.u32(headerMagic); w.u32(16)
        w.raw(segmentTag); w.u32(formatVersion); w.u64(segment)
        return w.bytes
    }

    /// The segment number in a header, nil when `bytes` does not start with one.
    static func parseHeader(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        var r = ByteReader(bytes)
        guard r.u32() == headerMagic, r.u32() == 16, r.raw(4) == segmentTag, r.u32() == formatVersion else { return nil }
        return r.u64()
    }

    struct Envelope: Equatable {
        var frameLength: Int
        var records: Int
        var rawLength: Int
        var firstTimestamp: UInt64
        var lastTimestamp: UInt64
    }

    static func envelope(_ e: Envelope) -> [UInt8] {
        var w = ByteWriter()
        w.u32(envelopeMagic); w.u32(36)
        w.raw(batchTag)
        w.u32(UInt32(e.frameLength)); w.u32(UInt32(e.records)); w.u32(UInt32(e.rawLength))
        w.u64(e.firstTimestamp); w.u64(e.lastTimestamp)
        let crc = w.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[8..<40])) }
        w.u32(crc)
        return w.bytes
    }

    /// The envelope at the start of `bytes`, nil unless magic, tag and checksum are right.
    static func parseEnvelope(_ bytes: UnsafeRawBufferPointer) -> Envelope? {
        guard bytes.count >= envelopeSize else { return nil }
        var r = ByteReader(bytes)
        guard r.u32() == envelopeMagic, r.u32() == 36, r.raw(4) == batchTag,
              let length = r.u32(), let records = r.u32(), let raw = r.u32(), let first = r.u64(), let last = r.u64(),
              let crc = r.u32(), crc == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[8..<40]))
        else { return nil }
        return Envelope(frameLength: Int(length), records: Int(records), rawLength: Int(raw), firstTimestamp: first,
                        lastTimestamp: last)
    }

    /// The next offset at or after `from` where a valid envelope starts, nil when there is none.
    static func findEnvelope(in bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
        var i = from
        while i + envelopeSize <= bytes.count {
            if bytes[i] == 0x51 && bytes[i + 1] == 0x2A && bytes[i + 2] == 0x4D && bytes[i + 3] == 0x18,
               parseEnvelope(UnsafeRawBufferPointer(rebasing: bytes[i...])) != nil
            {
                return i
            }
            i += 1
        }
        return nil
    }

    /// Walks the records of a batch's content without decoding them: the count (nil when they do not fill it
    /// exactly), per type, and the devices they belong to (`devices` non-nil).
    static func walk(_ content: UnsafeRawBufferPointer, perType: inout [Int], devices: inout Set<IPAddress>,
                     collectDevices: Bool) -> Int? {
        var r = ByteReader(content)
        var n = 0
        while r.remaining > 0 {
            guard let length = r.u32(), let type = r.u8(), r.u8() != nil, r.remaining >= Int(length) else { return nil }
            let end = r.offset + Int(length)
            if Int(type) < perType.count { perType[Int(type)] += 1 }
            if collectDevices {
                var body = ByteReader(UnsafeRawBufferPointer(rebasing: content[r.offset..<end]))
                if body.u64() != nil, let d = body.address() { devices.insert(d) }
            }
            r.offset = end
            n += 1
        }
        return n
    }

    /// Records back to back in a batch's content; nil when they do not fill it exactly. Records of an unknown
    /// type or version are counted in `unknown` and skipped.
    static func records(in content: UnsafeRawBufferPointer, unknown: inout Int, device: IPAddress? = nil) -> [JournalRecord]? {
        var r = ByteReader(content)
        var out: [JournalRecord] = []
        while r.remaining > 0 {
            guard let length = r.u32(), let type = r.u8(), let version = r.u8(), r.remaining >= Int(length) else { return nil }
            let body = UnsafeRawBufferPointer(rebasing: content[r.offset..<r.offset + Int(length)])
            r.offset += Int(length)
            if let device {
                // Only one device's records are wanted: the others are not decoded.
                var peek = ByteReader(body)
                guard peek.u64() != nil, peek.address() == device else { continue }
            }
            if let record = JournalRecord.decode(type: type, version: version, body: body) {
                out.append(record)
            } else {
                unknown += 1
            }
        }
        return out
    }
}

/// What a scan of one segment found.
struct SegmentScan {
    struct Damage: Sendable, Equatable {
        let offset: Int
        let reason: String
    }

    var batches = 0
    var records = 0
    var unknownRecords = 0
    var rawBytes = 0
    var damages: [Damage] = []
    /// End of the last batch read whole: past it, only damage (a torn tail when this is the segment being written).
    var goodEnd = 0
    var length = 0
    var firstTimestamp: UInt64 = .max
    var lastTimestamp: UInt64 = 0
    var headerValid = false

    /// Records per type (indexed by `JournalRecord.RecordType.rawValue`; unknown types not counted).
    var perType = [Int](repeating: 0, count: 8)

    /// What a scan does with each good batch.
    enum Depth {
        /// Checksums and record framing only (verification, recovery).
        case verify
        /// Also the devices of each batch (`visitDevices`), for an index.
        case devices
        /// Records decoded (`visit`).
        case records
    }

    /// Scans `bytes` (a whole segment); `visit` gets each good batch's offset and records (depth `.records`),
    /// `visitDevices` its offset and devices (depth `.devices`).
    static func scan(_ bytes: UnsafeRawBufferPointer, decoder: LZ4FrameDecoder, depth: Depth = .records,
                     onlyDevice: IPAddress? = nil,
                     visit: (_ offset: Int, _ records: [JournalRecord]) -> Void = { _, _ in },
                     visitDevices: (_ offset: Int, _ devices: Set<IPAddress>) -> Void = { _, _ in }) -> SegmentScan
    {
        var s = SegmentScan()
        s.length = bytes.count
        guard SegmentFormat.parseHeader(bytes) != nil else {
            s.damages.append(Damage(offset: 0, reason: "no statetap segment header"))
            return s
        }
        s.headerValid = true
        var offset = SegmentFormat.headerSize
        s.goodEnd = offset
        while offset < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            guard rest.count >= SegmentFormat.envelopeSize else {
                s.damages.append(Damage(offset: offset, reason: "cut inside a batch envelope (\(rest.count) bytes)"))
                break
            }
            guard let e = SegmentFormat.parseEnvelope(rest) else {
                let next = SegmentFormat.findEnvelope(in: bytes, from: offset + 1)
                s.damages.append(Damage(offset: offset, reason: "damaged batch envelope; "
                    + (next.map { "next batch found at \($0)" } ?? "no batch after it")))
                guard let next else { break }
                offset = next
                continue
            }
            let frameStart = offset + SegmentFormat.envelopeSize
            guard e.frameLength <= bytes.count - frameStart else {
                s.damages.append(Damage(offset: offset, reason: "cut inside a batch (\(bytes.count - frameStart) of \(e.frameLength) bytes)"))
                break
            }
            let frame = UnsafeRawBufferPointer(rebasing: bytes[frameStart..<frameStart + e.frameLength])
            switch decoder.decompress(frame, expectedLength: e.rawLength) {
            case .failure(let damage):
                s.damages.append(Damage(offset: offset, reason: "batch of \(e.records) records unreadable: \(damage.reason)"))
            case .success(let content):
                var perType = [Int](repeating: 0, count: 8)
                var devices = Set<IPAddress>()
                let counted = content.withUnsafeBytes { raw in
                    SegmentFormat.walk(raw, perType: &perType, devices: &devices, collectDevices: depth == .devices)
                }
                var records: [JournalRecord] = []
                var unknown = 0
                if counted == e.records, depth == .records {
                    var skipped = 0
                    records = content.withUnsafeBytes {
                        SegmentFormat.records(in: $0, unknown: &skipped, device: onlyDevice)
                    } ?? []
                    unknown = e.records - perType.reduce(0, +)
                } else if counted == e.records {
                    unknown = e.records - perType.reduce(0, +)
                }
                if counted == e.records {
                    s.batches += 1
                    s.records += e.records - unknown
                    s.unknownRecords += unknown
                    s.rawBytes += e.rawLength
                    for i in perType.indices { s.perType[i] += perType[i] }
                    s.firstTimestamp = min(s.firstTimestamp, e.firstTimestamp)
                    s.lastTimestamp = max(s.lastTimestamp, e.lastTimestamp)
                    s.goodEnd = frameStart + e.frameLength
                    switch depth {
                    case .records: visit(offset, records)
                    case .devices: visitDevices(offset, devices)
                    case .verify: break
                    }
                } else {
                    s.damages.append(Damage(offset: offset, reason: "batch records do not match its envelope"))
                }
            }
            offset = frameStart + e.frameLength
        }
        return s
    }
}

/// A closed segment's index (sidecar `seg-N.idx`): which batches hold each device's records, and the time range.
///
///     index := "STJI" | u32 version | u64 segment length | u64 first ts | u64 last ts | u32 devices
///              | (addr | u32 n | n × u32 batch offset)* | u32 CRC-32C of everything before it
struct SegmentIndex: Equatable {
    var segmentLength: Int
    var firstTimestamp: UInt64
    var lastTimestamp: UInt64
    var batches: [IPAddress: [UInt32]]

    func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.raw(Array("STJI".utf8)); w.u32(1)
        w.u64(UInt64(segmentLength)); w.u64(firstTimestamp); w.u64(lastTimestamp)
        w.u32(UInt32(batches.count))
        for (device, offsets) in batches.sorted(by: { $0.key < $1.key }) {
            w.address(device)
            w.u32(UInt32(offsets.count))
            for o in offsets { w.u32(o) }
        }
        w.u32(w.withUnsafeBytes { CRC32C.checksum($0) })
        return w.bytes
    }

    init(segmentLength: Int, firstTimestamp: UInt64, lastTimestamp: UInt64, batches: [IPAddress: [UInt32]]) {
        self.segmentLength = segmentLength; self.firstTimestamp = firstTimestamp
        self.lastTimestamp = lastTimestamp; self.batches = batches
    }

    /// Nil when the bytes are not a whole, intact index.
    init?(_ bytes: [UInt8]) {
        guard bytes.count >= 36 else { return nil }
        let body = bytes.count - 4
        let stored = bytes[body...].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << UInt32(8 * $1.offset) }
        guard stored == CRC32C.checksum(Array(bytes[..<body])) else { return nil }
        let parsed: SegmentIndex? = bytes.withUnsafeBytes { raw in
            var r = ByteReader(UnsafeRawBufferPointer(rebasing: raw[..<body]))
            guard r.raw(4) == Array("STJI".utf8), r.u32() == 1, let length64 = r.u64(), let length = Int(exactly: length64),
                  let first = r.u64(), let last = r.u64(), let n = r.u32() else { return nil }
            var batches: [IPAddress: [UInt32]] = [:]
            for _ in 0..<n {
                guard let device = r.address(), let count = r.u32(), Int(count) <= r.remaining / 4 else { return nil }
                var offsets: [UInt32] = []
                offsets.reserveCapacity(Int(count))
                for _ in 0..<count { guard let o = r.u32() else { return nil }; offsets.append(o) }
                batches[device] = offsets
            }
            guard r.remaining == 0 else { return nil }
            return SegmentIndex(segmentLength: length, firstTimestamp: first, lastTimestamp: last, batches: batches)
        }
        guard let parsed else { return nil }
        self = parsed
    }
}
