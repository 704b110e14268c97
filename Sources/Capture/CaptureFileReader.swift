import CPcap
import Decode

/// Errors opening or reading a capture file.
public struct CaptureFileError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
}

/// Reads pcap and pcapng files with libpcap, with nanosecond timestamps. libpcap opens every file (it checks the
/// header and names the link type); the records of a classic pcap on a regular file are then read by
/// `PcapRecordReader`, which yields the same packets without libpcap's copy per packet.
public final class CaptureFileReader {
    public let path: String
    public let linkType: LinkType
    /// libpcap's name for the link type (e.g. "EN10MB").
    public let linkTypeName: String
    /// The file's snap length.
    public let snapLength: Int
    private let handle: OpaquePointer
    private let records: PcapRecordReader?

    /// Opens `path`; throws when it cannot be read or its link type is not one statetap decodes. `direct: false`
    /// reads every record through libpcap (tests compare the two).
    public init(path: String, direct: Bool = true) throws {
        self.path = path
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        guard let h = pcap_open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errbuf) else {
            throw CaptureFileError(path: path, message: String(decoding: errbuf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        let dlt = pcap_datalink(h)
        let name = pcap_datalink_val_to_name(dlt).map { String(cString: $0) } ?? "DLT \(dlt)"
        guard let lt = Self.linkType(dlt: dlt) else {
            pcap_close(h)
            throw CaptureFileError(path: path, message: "unsupported link type \(name) (\(dlt)); statetap reads "
                + "Ethernet, Linux cooked (SLL, SLL2), BSD loopback and raw IP captures")
        }
        handle = h
        linkType = lt
        linkTypeName = name
        snapLength = Int(pcap_snapshot(h))
        records = direct && pcap_datalink_ext(h) == 0 ? PcapRecordReader(path: path, snapshot: snapLength) : nil
    }

    /// Whether records are read without libpcap (a classic pcap on a regular file).
    public var readsDirectly: Bool { records != nil }

    deinit { pcap_close(handle) }

    /// Maps libpcap's DLT_* value to a link type (DLT_RAW is 12 on Linux, 14 on OpenBSD; 101 is LINKTYPE_RAW).
    static func linkType(dlt: Int32) -> LinkType? {
        switch dlt {
        case 0: .null
        case 1: .ethernet
        case 108: .loop
        case 12, 14, 101: .raw
        case 113: .linuxSLL
        case 276: .linuxSLL2
        case 228: .ipv4
        case 229: .ipv6
        default: nil
        }
    }

    /// One packet from the file.
    public enum Next {
        /// A packet; the bytes are libpcap's and valid only until the next call.
        case packet(UnsafeRawBufferPointer, originalLength: Int, timestampNanoseconds: UInt64)
        case end
        case error(String)
    }

    /// Reads the next packet.
    public func next() -> Next {
        if let records { return records.next() }
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        switch pcap_next_ex(handle, &header, &data) {
        case 1:
            guard let h = header?.pointee, let d = data else { return .error("libpcap returned no packet") }
            // With PCAP_TSTAMP_PRECISION_NANO, tv_usec holds nanoseconds.
            let ns = UInt64(max(0, h.ts.tv_sec)) &* 1_000_000_000 &+ UInt64(max(0, h.ts.tv_usec))
            return .packet(UnsafeRawBufferPointer(start: d, count: Int(h.caplen)), originalLength: Int(h.len),
                           timestampNanoseconds: ns)
        case -2:
            return .end
        default:
            return .error(String(cString: pcap_geterr(handle)))
        }
    }
}
