#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Decode

/// A capture-file writer failure: the operation, the file and the `errno` it failed with.
public struct CaptureWriterError: Error, CustomStringConvertible, Sendable {
    /// The system call or step that failed ("open", "write", "close").
    public let operation: String
    /// The file being written.
    public let path: String
    /// The `errno` value.
    public let code: Int32

    /// Creates an error for `operation` on `path` failing with `code`.
    public init(operation: String, path: String, code: Int32) {
        self.operation = operation; self.path = path; self.code = code
    }

    /// The system's text for `code` (strerror).
    public var message: String { String(cString: strerror(code)) }

    /// "write /tmp/x.pcap: No space left on device (errno 28)".
    public var description: String { "\(operation) \(path): \(message) (errno \(code))" }
}

/// A writer of capture files (classic pcap or pcapng) taking one packet at a time.
public protocol CaptureFileWriter: AnyObject {
    /// Appends one packet captured at `timestampNanoseconds` (since the Unix epoch); `originalLength` defaults to
    /// the byte count, and packets longer than the snap length are cut.
    func write(packet: UnsafeRawBufferPointer, timestampNanoseconds: UInt64, originalLength: Int?) throws
    /// Writes buffered bytes to the file.
    func flush() throws
    /// Flushes and closes the file; later writes fail.
    func close() throws
}

extension CaptureFileWriter {
    /// Appends one packet held in an array.
    public func write(packet: [UInt8], timestampNanoseconds: UInt64, originalLength: Int? = nil) throws {
        try packet.withUnsafeBytes {
            try write(packet: $0, timestampNanoseconds: timestampNanoseconds, originalLength: originalLength)
        }
    }
}

/// Classic pcap writer: nanosecond-resolution magic (0xa1b23c4d), host byte order, any link type.
public final class PcapWriter: CaptureFileWriter {
    /// The link type written in the file header.
    public let linkType: LinkType
    /// Packets are cut to this many bytes.
    public let snaplen: Int
    let file: BufferedFile

    /// Creates (or truncates) `path` and writes the file header.
    public init(path: String, linkType: LinkType, snaplen: Int = 262_144) throws {
        self.linkType = linkType
        self.snaplen = max(1, snaplen)
        file = try BufferedFile(path: path)
        file.append(UInt32(0xa1b2_3c4d))
        file.append(UInt16(2))
        file.append(UInt16(4))
        file.append(Int32(0))  // thiszone
        file.append(UInt32(0))  // sigfigs
        file.append(UInt32(truncatingIfNeeded: self.snaplen))
        file.append(UInt32(linkType.rawValue))
    }

    /// Appends one packet (record header and the first `snaplen` bytes).
    public func write(packet: UnsafeRawBufferPointer, timestampNanoseconds: UInt64, originalLength: Int? = nil)
        throws
    {
        try file.reserve(16)
        let captured = min(packet.count, snaplen)
        file.append(UInt32(truncatingIfNeeded: timestampNanoseconds / 1_000_000_000))
        file.append(UInt32(truncatingIfNeeded: timestampNanoseconds % 1_000_000_000))
        file.append(UInt32(truncatingIfNeeded: captured))
        file.append(UInt32(truncatingIfNeeded: max(originalLength ?? packet.count, captured)))
        try file.append(UnsafeRawBufferPointer(rebasing: packet[0..<captured]))
    }

    /// Writes buffered bytes to the file.
    public func flush() throws { try file.flush() }

    /// Flushes and closes the file.
    public func close() throws { try file.close() }
}

/// pcapng writer: a section header, one interface (nanosecond timestamps, if_tsresol = 9) and enhanced packet blocks.
public final class PcapNGWriter: CaptureFileWriter {
    /// The interface's link type.
    public let linkType: LinkType
    /// Packets are cut to this many bytes.
    public let snaplen: Int
    let file: BufferedFile

    /// Creates (or truncates) `path` and writes the section header and interface description blocks.
    public init(path: String, linkType: LinkType, snaplen: Int = 262_144) throws {
        self.linkType = linkType
        self.snaplen = max(1, snaplen)
        file = try BufferedFile(path: path)
        // Section header block: no options.
        file.append(UInt32(0x0a0d_0d0a))
        file.append(UInt32(28))
        file.append(UInt32(0x1a2b_3c4d))
        file.append(UInt16(1))
        file.append(UInt16(0))
        file.append(UInt64.max)  // section length unknown
        file.append(UInt32(28))
        // Interface description block: if_tsresol = 9 (nanoseconds), then end of options.
        file.append(UInt32(1))
        file.append(UInt32(32))
        file.append(linkType.rawValue)
        file.append(UInt16(0))
        file.append(UInt32(truncatingIfNeeded: self.snaplen))
        file.append(UInt16(9))  // if_tsresol
        file.append(UInt16(1))
        file.append(UInt32(9))  // value 9 and 3 bytes of padding (little-endian: the value byte comes first)
        file.append(UInt32(0))  // opt_endofopt
        file.append(UInt32(32))
    }

    /// Appends one enhanced packet block.
    public func write(packet: UnsafeRawBufferPointer, timestampNanoseconds: UInt64, originalLength: Int? = nil)
        throws
    {
        try file.reserve(28)
        let captured = min(packet.count, snaplen)
        let padded = (captured + 3) & ~3
        let total = UInt32(truncatingIfNeeded: 32 + padded)
        file.append(UInt32(6))
        file.append(total)
        file.append(UInt32(0))  // interface id
        file.append(UInt32(truncatingIfNeeded: timestampNanoseconds >> 32))
        file.append(UInt32(truncatingIfNeeded: timestampNanoseconds))
        file.append(UInt32(truncatingIfNeeded: captured))
        file.append(UInt32(truncatingIfNeeded: max(originalLength ?? packet.count, captured)))
        try file.append(UnsafeRawBufferPointer(rebasing: packet[0..<captured]))
        try file.reserve(8)
        if padded > captured { file.append(UInt32(0), bytes: padded - captured) }
        file.append(total)
    }

    /// Writes buffered bytes to the file.
    public func flush() throws { try file.flush() }

    /// Flushes and closes the file.
    public func close() throws { try file.close() }
}

/// A file descriptor with a 1 MiB write buffer; flushed when full, on `close` and on deinit.
final class BufferedFile {
    static let capacity = 1 << 20
    let path: String
    private var fd: Int32
    private let buffer: UnsafeMutableRawPointer
    private var count = 0

    init(path: String) throws {
        self.path = path
        let fd = sysOpen(path)
        guard fd >= 0 else { throw CaptureWriterError(operation: "open", path: path, code: errno) }
        self.fd = fd
        buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.capacity, alignment: 16)
    }

    deinit {
        if fd >= 0 {
            try? flush()
            _ = sysClose(fd)
        }
        buffer.deallocate()
    }

    func checkOpen() throws {
        guard fd >= 0 else { throw CaptureWriterError(operation: "write", path: path, code: EBADF) }
    }

    /// Makes room for `n` buffered bytes (flushing if needed); call before small `append`s.
    @inline(__always)
    func reserve(_ n: Int) throws {
        try checkOpen()
        if count + n > Self.capacity { try flush() }
    }

    /// Appends `value` in host byte order (room must have been reserved).
    @inline(__always)
    func append<T: FixedWidthInteger>(_ value: T) {
        append(value, bytes: MemoryLayout<T>.size)
    }

    /// Appends the first `bytes` bytes of `value`'s memory (room must have been reserved).
    @inline(__always)
    func append<T: FixedWidthInteger>(_ value: T, bytes: Int) {
        precondition(count + bytes <= Self.capacity)
        withUnsafeBytes(of: value) { buffer.advanced(by: count).copyMemory(from: $0.baseAddress!, byteCount: bytes) }
        count += bytes
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        if count + bytes.count > Self.capacity { try flush() }
        if bytes.count > Self.capacity {
            try writeAll(bytes)
            return
        }
        buffer.advanced(by: count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        count += bytes.count
    }

    func flush() throws {
        guard count > 0 else { return }
        try checkOpen()
        let n = count
        count = 0
        try writeAll(UnsafeRawBufferPointer(start: buffer, count: n))
    }

    func close() throws {
        guard fd >= 0 else { return }
        defer { fd = -1 }
        try flush()
        guard sysClose(fd) == 0 else { throw CaptureWriterError(operation: "close", path: path, code: errno) }
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = sysWrite(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw CaptureWriterError(operation: "write", path: path, code: errno)
            }
            done += n
        }
    }
}

private func sysOpen(_ path: String) -> Int32 {
    open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
}

private func sysWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    write(fd, p, n)
}

private func sysClose(_ fd: Int32) -> Int32 {
    close(fd)
}
