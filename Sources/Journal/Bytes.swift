import Decode

/// Appends little-endian integers, addresses and length-prefixed strings to a byte buffer (the journal's
/// record encoding).
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func raw(_ b: some Collection<UInt8>) { bytes.append(contentsOf: b) }

    /// A tagged field: u8 tag, u16 length, the string's UTF-8 (cut at 65,535 bytes). No intermediate copy.
    mutating func field(_ tag: UInt8, _ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            let n = min(utf8.count, Int(UInt16.max))
            bytes.append(tag)
            u16(UInt16(n))
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[0..<n]))
        }
    }

    /// A header field: u8 tag, u16 length, u8 name length, name, value.
    mutating func header(_ tag: UInt8, name: String, value: String) {
        var name = name, value = value
        name.withUTF8 { n in
            value.withUTF8 { v in
                let nl = min(n.count, 255)
                let vl = min(v.count, Int(UInt16.max) - 1 - nl)
                bytes.append(tag)
                u16(UInt16(1 + nl + vl))
                bytes.append(UInt8(nl))
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: n[0..<nl]))
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: v[0..<vl]))
            }
        }
    }

    /// Family byte (4 or 6) and the address bytes.
    mutating func address(_ a: IPAddress) {
        u8(a.isIPv6 ? 6 : 4)
        raw(a.bytes)
    }

    /// A u16 length and the bytes (longer values are cut at 65,535 bytes).
    mutating func string(_ s: String) {
        let b = Array(s.utf8.prefix(Int(UInt16.max)))
        u16(UInt16(b.count))
        raw(b)
    }

    /// Overwrites a u32 at `offset` (a length known only after the body is written).
    mutating func patch32(_ v: UInt32, at offset: Int) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: v >> UInt32(8 * i)) }
    }
}

/// Reads what `ByteWriter` wrote, every read checked: nil past the end (a record is never trusted).
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func u8() -> UInt8? {
        guard remaining >= 1 else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { offset += 2 }
        return UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    mutating func u32() -> UInt32? {
        guard remaining >= 4 else { return nil }
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[offset + i]) << UInt32(8 * i) }
        offset += 4
        return v
    }

    mutating func u64() -> UInt64? {
        guard remaining >= 8 else { return nil }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[offset + i]) << UInt64(8 * i) }
        offset += 8
        return v
    }

    mutating func raw(_ n: Int) -> [UInt8]? {
        guard n >= 0, remaining >= n else { return nil }
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }

    mutating func address() -> IPAddress? {
        guard let family = u8() else { return nil }
        switch family {
        case 4:
            guard let b = raw(4) else { return nil }
            return IPAddress(ipv4: UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3]))
        case 6:
            guard let b = raw(16) else { return nil }
            var high: UInt64 = 0, low: UInt64 = 0
            for i in 0..<8 { high = high << 8 | UInt64(b[i]); low = low << 8 | UInt64(b[8 + i]) }
            return IPAddress(high: high, low: low, isIPv6: true)
        default:
            return nil
        }
    }

    mutating func string() -> String? {
        guard let n = u16() else { return nil }
        return text(Int(n))
    }

    /// `n` bytes as a string, decoded straight from the buffer.
    mutating func text(_ n: Int) -> String? {
        guard n >= 0, remaining >= n else { return nil }
        defer { offset += n }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n]), as: UTF8.self)
    }

    /// A view of the next `n` bytes (valid while the buffer is).
    mutating func view(_ n: Int) -> UnsafeRawBufferPointer? {
        guard n >= 0, remaining >= n else { return nil }
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n])
    }
}

/// CRC-32C (Castagnoli), for the journal's envelopes and index files; the LZ4 frames carry their own xxHash32.
enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { checksum($0) } }
}
