import CPcap
import Decode
#if canImport(Glibc)
import Glibc
#endif

/// Writes frames to a pcap file with nanosecond timestamps (libpcap's dumper): `capture --write-pcap`, for
/// debugging what was captured. Used by one thread.
public final class CaptureFileDumper {
    public let path: String
    private let dead: OpaquePointer
    private let dumper: OpaquePointer

    public init(path: String, linkType: LinkType = .ethernet, snapLength: Int = 262_144) throws {
        self.path = path
        guard let d = pcap_open_dead_with_tstamp_precision(Int32(linkType.rawValue), Int32(snapLength),
                                                           UInt32(PCAP_TSTAMP_PRECISION_NANO))
        else { throw CaptureFileError(path: path, message: "libpcap could not make a dumper") }
        guard let f = pcap_dump_open(d, path) else {
            let message = String(cString: pcap_geterr(d))
            pcap_close(d)
            throw CaptureFileError(path: path, message: message)
        }
        dead = d
        dumper = f
    }

    /// Appends one frame.
    public func write(_ bytes: UnsafeRawBufferPointer, timestampNanoseconds ts: UInt64) {
        var header = pcap_pkthdr()
        header.ts.tv_sec = Int(ts / 1_000_000_000)
        header.ts.tv_usec = Int(ts % 1_000_000_000)  // nanoseconds: the file says so in its magic
        header.caplen = UInt32(bytes.count)
        header.len = UInt32(bytes.count)
        pcap_dump(UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self), &header,
                  bytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
    }

    /// Flushes and closes the file (idempotent through deinit).
    public func close() {
        pcap_dump_flush(dumper)
    }

    deinit {
        pcap_dump_close(dumper)
        pcap_close(dead)
    }
}
