import Decode
import Extract
#if canImport(Glibc)
import Glibc
#endif

/// Appends little-endian integers, addresses and length-prefixed strings to a growable byte buffer (the journal's
/// record encoding). Raw storage, written through a pointer: the journal thread encodes every record here, so a
/// field costs a bounds check and a store, not an Array append.
struct ByteWriter: ~Copyable {
    private var base: UnsafeMutableRawPointer
    private var capacity: Int
    /// Bytes written.
    private(set) var count = 0

    init(capacity: Int = 256) {
        self.capacity = max(capacity, 16)
        base = .allocate(byteCount: self.capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    /// A copy of the bytes written.
    var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// Forgets what was written, keeps the storage.
    mutating func removeAll() { count = 0 }

    @inline(__always) private mutating func reserve(_ n: Int) {
        if capacity &- count < n { grow(count + n) }
    }

    @inline(never) private mutating func grow(_ needed: Int) {
        let newCapacity = max(needed, capacity * 2)
        let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        grown.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = grown
        capacity = newCapacity
    }

    /// Stores `v` as it lies in memory (unaligned stores are fine).
    @inline(__always) private mutating func store<T: BitwiseCopyable>(_ v: T) {
        reserve(MemoryLayout<T>.size)
        base.storeBytes(of: v, toByteOffset: count, as: T.self)
        count &+= MemoryLayout<T>.size
    }

    mutating func u8(_ v: UInt8) { store(v) }
    mutating func u16(_ v: UInt16) { store(v.littleEndian) }
    mutating func u32(_ v: UInt32) { store(v.littleEndian) }
    mutating func u64(_ v: UInt64) { store(v.littleEndian) }

    mutating func raw(_ b: UnsafeRawBufferPointer) {
        guard let src = b.baseAddress, b.count > 0 else { return }
        reserve(b.count)
        (base + count).copyMemory(from: src, byteCount: b.count)
        count &+= b.count
    }

    mutating func raw(_ b: some Collection<UInt8>) {
        let done: Void? = b.withContiguousStorageIfAvailable { raw(UnsafeRawBufferPointer($0)) }
        if done == nil { for x in b { u8(x) } }
    }

    /// At most `limit` bytes of `b` (cut where the limit falls).
    @inline(__always)
    private mutating func raw(_ b: UnsafeRawBufferPointer, limit: Int) {
        raw(UnsafeRawBufferPointer(rebasing: b[0..<min(b.count, limit)]))
    }

    /// A tagged field: u8 tag, u16 length, the string's UTF-8 (cut at 65,535 bytes). No intermediate copy.
    mutating func field(_ tag: UInt8, _ s: String) {
        withUTF8(s) { b in
            let n = min(b.count, Int(UInt16.max))
            u8(tag)
            u16(UInt16(n))
            raw(b, limit: n)
        }
    }

    /// Family byte (4 or 6) and the address bytes (network order).
    mutating func address(_ a: IPAddress) {
        if a.isIPv6 {
            u8(6)
            store(a.high.bigEndian)
            store(a.low.bigEndian)
        } else {
            u8(4)
            store(UInt32(truncatingIfNeeded: a.low).bigEndian)
        }
    }

    /// Overwrites a u32 at `offset` (a length known only after the body is written).
    mutating func patch32(_ v: UInt32, at offset: Int) {
        precondition(offset >= 0 && offset + 4 <= count, "patch32 outside the written bytes")
        base.storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt32.self)
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
