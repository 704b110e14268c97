#if canImport(Glibc)
import Glibc
#endif

/// Reads the records of a classic pcap file (version 2.4, either byte order, microsecond or nanosecond magic) in
/// large `pread` chunks, and hands out each packet where it lies in the chunk: no call into libpcap and no copy per
/// packet (libpcap copies each packet out of stdio's 4 KB buffer into its own). What it yields is exactly what
/// libpcap's `pcap_next_ex` yields for the same file, including its treatment of damaged records (a record longer
/// than the snapshot length is cut to it; one longer than 256 KiB, or cut short by the end of the file, is an
/// error with libpcap's message). Anything else (pcapng, other versions, a pipe) stays with libpcap.
final class PcapRecordReader {
    private let fd: Int32
    /// libpcap's snapshot length for the file (`pcap_snapshot`), which cuts longer records.
    private let snapshot: UInt32
    private let swapped: Bool
    private let nanosecond: Bool
    /// Read buffer: `[start, end)` holds file bytes not yet consumed; `fileOffset` is where the next read begins.
    private let buffer: UnsafeMutableRawPointer
    private let capacity: Int
    private var start = 0
    private var end = 0
    private var fileOffset: Int64 = 24
    private var atEOF = false

    /// libpcap's limit on a record for the link types statetap reads (`MAXIMUM_SNAPLEN`).
    static let maximumCaptureLength: UInt32 = 262_144
    static let chunk = 1 << 20

    /// Opens `path` when it is a regular file holding a classic pcap this reader takes; nil otherwise (libpcap then
    /// reads it). `snapshot` is libpcap's snapshot length for the file.
    init?(path: String, snapshot: Int) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var st = stat()
        var header = (UInt64(0), UInt64(0), UInt64(0))  // the 24-byte file header
        let got = withUnsafeMutableBytes(of: &header) { pread(fd, $0.baseAddress, 24, 0) }
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, got == 24, snapshot > 0 else {
            close(fd)
            return nil
        }
        let h = withUnsafeBytes(of: header) { Array($0) }
        func u32(_ o: Int) -> UInt32 { UInt32(h[o]) | UInt32(h[o + 1]) << 8 | UInt32(h[o + 2]) << 16 | UInt32(h[o + 3]) << 24 }
        func u16(_ o: Int) -> UInt16 { UInt16(h[o]) | UInt16(h[o + 1]) << 8 }
        let magic = u32(0)
        let swapped: Bool, nanosecond: Bool
        switch magic {
        case 0xa1b2_c3d4: swapped = false; nanosecond = false
        case 0xa1b2_3c4d: swapped = false; nanosecond = true
        case 0xd4c3_b2a1: swapped = true; nanosecond = false
        case 0x4d3c_b2a1: swapped = true; nanosecond = true
        default: close(fd); return nil
        }
        let major = swapped ? u16(4).byteSwapped : u16(4), minor = swapped ? u16(6).byteSwapped : u16(6)
        let linkField = swapped ? u32(20).byteSwapped : u32(20)
        // Version 2.4 only (older versions may have swapped lengths); no FCS/extension bits in the link type.
        guard major == 2, minor == 4, linkField & 0xffff_0000 == 0 else {
            close(fd)
            return nil
        }
        self.fd = fd
        self.snapshot = UInt32(min(snapshot, Int(UInt32.max)))
        self.swapped = swapped
        self.nanosecond = nanosecond
        capacity = Self.chunk + Int(Self.maximumCaptureLength) + 16
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
    }

    deinit {
        buffer.deallocate()
        close(fd)
    }

    /// Bytes buffered and not consumed.
    private var available: Int { end - start }

    /// Reads until at least `wanted` bytes are buffered or the file ends; nil, or libpcap's message for a failed
    /// read.
    private func fill(_ wanted: Int) -> String? {
        while available < wanted && !atEOF {
            if start > 0 {
                if available > 0 { buffer.copyMemory(from: buffer + start, byteCount: available) }
                end = available
                start = 0
            }
            let room = min(capacity - end, Self.chunk)
            let n = pread(fd, buffer + end, room, off_t(fileOffset))
            if n < 0 {
                if errno == EINTR { continue }
                return "error reading dump file: \(String(cString: strerror(errno)))"
            }
            if n == 0 { atEOF = true; break }
            end += n
            fileOffset += Int64(n)
        }
        return nil
    }

    @inline(__always)
    private func word(_ o: Int) -> UInt32 {
        let v = (buffer + start + o).loadUnaligned(as: UInt32.self)
        return swapped ? v.byteSwapped : UInt32(littleEndian: v)
    }

    /// The next record, as `CaptureFileReader.next` returns it.
    func next() -> CaptureFileReader.Next {
        if available < 16, let failure = fill(16) { return .error(failure) }
        if available == 0 { return .end }
        if available < 16 {
            return .error("truncated dump file; tried to read 16 header bytes, only got \(available)")
        }
        // Signed 32-bit fields, as libpcap stores them in a timeval.
        let seconds = Int64(Int32(bitPattern: word(0)))
        var fraction = Int64(Int32(bitPattern: word(4)))
        if !nanosecond { fraction *= 1000 }
        let caplen = word(8), len = word(12)
        if caplen > Self.maximumCaptureLength {
            return .error(caplen > snapshot
                ? "invalid packet capture length \(caplen), bigger than snaplen of \(snapshot)"
                : "invalid packet capture length \(caplen), bigger than maximum of \(Self.maximumCaptureLength)")
        }
        let recordLength = 16 + Int(caplen)
        if available < recordLength, let failure = fill(recordLength) { return .error(failure) }
        let body = available - 16
        // A record longer than the snapshot length is cut to it, the rest skipped (libpcap does the same).
        let delivered = min(caplen, snapshot)
        if body < Int(delivered) {
            return .error("truncated dump file; tried to read \(delivered) captured bytes, only got \(body)")
        }
        if body < Int(caplen) {
            return .error("truncated dump file; tried to read \(caplen) captured bytes, only got \(body)")
        }
        let data = UnsafeRawBufferPointer(start: buffer + start + 16, count: Int(delivered))
        start += recordLength
        let ns = UInt64(max(0, seconds)) &* 1_000_000_000 &+ UInt64(max(0, fraction))
        return .packet(data, originalLength: Int(len), timestampNanoseconds: ns)
    }
}
