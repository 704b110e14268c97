/// Reads a harness's parameters from the front of the fuzz input: fixed-size fields that never fail (past the
/// end they read as zero), then the rest as data. Mutating a parameter byte changes one decision, so libFuzzer
/// explores the decisions as it explores the data.
public struct FuzzInput {
    private let bytes: UnsafeRawBufferPointer
    public private(set) var position = 0

    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    }

    public var remaining: Int { bytes.count - position }

    public mutating func u8() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func u16() -> UInt16 { UInt16(u8()) << 8 | UInt16(u8()) }

    public mutating func u32() -> UInt32 { UInt32(u16()) << 16 | UInt32(u16()) }

    /// Up to `n` bytes (fewer at the end of the input).
    public mutating func take(_ n: Int) -> [UInt8] {
        let n = max(0, min(n, remaining))
        defer { position += n }
        return Array(bytes[position..<position + n])
    }

    /// Everything not read yet.
    public mutating func rest() -> [UInt8] { take(remaining) }
}

/// Runs `body` on a heap copy of `bytes` of exactly their size, so AddressSanitizer reports a read one byte past
/// the end (or before the start). A slice of the fuzz input, or a Swift array (whose capacity may exceed its
/// count), would hide such reads.
@inline(never)
public func withExactCopy<R>(of bytes: some Collection<UInt8>, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows
    -> R
{
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
    defer { copy.deallocate() }
    _ = copy.initializeMemory(as: UInt8.self, from: bytes)
    return try body(UnsafeRawBufferPointer(copy))
}

/// The bytes of an ASCII string.
public func ascii(_ s: String) -> [UInt8] { Array(s.utf8) }

/// `value` as `count` big-endian bytes.
public func bigEndian(_ value: UInt64, count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: value >> UInt64(8 * (count - 1 - $0))) }
}

/// A harness check. Unlike `precondition`, its message is printed in release builds too (and ends up in the crash
/// report next to the input).
public func check(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID,
                  line: UInt = #line) {
    if !condition { fatalError(message(), file: file, line: line) }
}
