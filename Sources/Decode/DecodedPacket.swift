/// What the decoder learned about one packet: the innermost 5-tuple, its encapsulation context and where the
/// transport payload is. Fixed size, no references: a worker reuses one value for every packet.
public struct DecodedPacket: Sendable, BitwiseCopyable {
    /// Every header seen.
    public var layers: Layers = []
    /// Number of VLAN tags (any depth); the first `maxStoredVLANs` ids are kept, outermost first.
    public var vlanCount: UInt8 = 0
    public var vlanIDs: (UInt16, UInt16, UInt16, UInt16) = (0, 0, 0, 0)
    public static let maxStoredVLANs = 4
    /// Number of MPLS labels seen.
    public var mplsCount: UInt8 = 0
    /// Number of tunnel layers entered (GRE, IP-in-IP, GTP-U, ERSPAN, MPLS pseudowire).
    public var tunnelDepth: UInt8 = 0
    /// GTP-U TEID of the innermost GTP-U header, when `hasTEID`.
    public var teid: UInt32 = 0
    public var hasTEID: Bool = false
    /// Outer IP addresses of the innermost tunnel (GTP-U / GRE / IP-in-IP endpoints), when `tunnelDepth > 0`.
    public var tunnelSource: IPAddress = .none
    public var tunnelDestination: IPAddress = .none

    /// Innermost IP header.
    public var source: IPAddress = .none
    public var destination: IPAddress = .none
    /// Innermost IP protocol (after IPv6 extension headers).
    public var ipProtocol: UInt8 = 0
    public var ipTTL: UInt8 = 0
    /// Innermost transport ports (0 when no TCP/UDP).
    public var sourcePort: UInt16 = 0
    public var destinationPort: UInt16 = 0

    /// TCP fields (when `layers` has `.tcp`).
    public var tcpFlags: UInt8 = 0
    public var tcpSequence: UInt32 = 0
    public var tcpAcknowledgment: UInt32 = 0
    public var tcpWindow: UInt16 = 0
    /// TCP options seen: MSS (0 if absent), window scale (0xff if absent), SACK permitted, timestamps.
    public var tcpMSS: UInt16 = 0
    public var tcpWindowScale: UInt8 = 0xff
    public var tcpSACKPermitted: Bool = false
    public var tcpTimestamp: Bool = false

    /// Transport payload location within the bytes that were decoded (the frame, or a reassembly buffer).
    public var payloadOffset: Int = 0
    public var payloadLength: Int = 0
    /// Total bytes of the decoded buffer.
    public var wireLength: Int = 0
    /// `DecodeNotice`s raised while decoding, one bit per notice (`1 << rawValue`).
    public var notices: UInt8 = 0
    /// How many bytes of the innermost IP datagram the capture did not keep (its length field says more than was
    /// captured: the snap length cut it), i.e. how many the sender sent after the transport payload seen; 0 when
    /// whole. Set by every IP layer decoded, so the innermost one's stands.
    public var capturedShortBy: UInt32 = 0

    @inlinable mutating func note(_ n: DecodeNotice) { notices |= 1 << n.rawValue }
    /// Whether `n` was raised for this packet.
    @inlinable public func has(_ n: DecodeNotice) -> Bool { notices & (1 << n.rawValue) != 0 }

    /// The IP fragment the decoder stopped at, when the outcome is `.fragment`.
    public var fragment = FragmentInfo.none

    @inlinable public init() {}

    /// Makes the value ready for the next packet by clearing the fields every packet defines. Fields that are only
    /// meaningful under a condition are left as they were: `vlanIDs` beyond `vlanCount`, `teid` without `hasTEID`,
    /// the tunnel endpoints without `tunnelDepth`, the TCP fields without `.tcp` in `layers` (the decoder sets all
    /// of them, options included, for every TCP segment), and `fragment` unless the outcome is `.fragment`.
    /// (A whole reinitialization costs more than the rest of decoding a plain TCP packet.)
    @inlinable public mutating func resetForNextPacket() {
        layers = []
        vlanCount = 0
        mplsCount = 0
        tunnelDepth = 0
        hasTEID = false
        source = .none
        destination = .none
        ipProtocol = 0
        ipTTL = 0
        sourcePort = 0
        destinationPort = 0
        tcpFlags = 0
        payloadOffset = 0
        payloadLength = 0
        notices = 0
    }

    /// VLAN id at `index` (outermost first), for `index < min(vlanCount, maxStoredVLANs)`.
    @inlinable public func vlanID(_ index: Int) -> UInt16 {
        switch index {
        case 0: vlanIDs.0
        case 1: vlanIDs.1
        case 2: vlanIDs.2
        default: vlanIDs.3
        }
    }

    /// The stored VLAN ids packed 16 bits each, outermost in the high bits (a compact key for VLAN context).
    @inlinable public var packedVLANs: UInt64 {
        var packed: UInt64 = 0
        for i in 0..<min(Int(vlanCount), DecodedPacket.maxStoredVLANs) { packed = packed << 16 | UInt64(vlanID(i)) }
        return packed
    }

    @inlinable mutating func pushVLAN(_ id: UInt16) {
        switch vlanCount {
        case 0: vlanIDs.0 = id
        case 1: vlanIDs.1 = id
        case 2: vlanIDs.2 = id
        case 3: vlanIDs.3 = id
        default: break
        }
        vlanCount &+= 1
    }
}

/// An IP fragment the decoder stopped at: reassemble it, then resume with `PacketDecoder.resume`.
public struct FragmentInfo: Sendable, BitwiseCopyable {
    public var source: IPAddress
    public var destination: IPAddress
    /// IPv4 identification (16 bits) or IPv6 fragment identification (32 bits).
    public var identification: UInt32
    /// The protocol of the reassembled payload.
    public var nextProtocol: UInt8
    public var isIPv6: Bool
    /// Byte offset of this fragment's data within the original datagram.
    public var fragmentOffset: Int
    public var moreFragments: Bool
    /// This fragment's data within the decoded buffer.
    public var dataOffset: Int
    public var dataLength: Int
    /// No fragment.
    public static let none = FragmentInfo(source: .none, destination: .none, identification: 0, nextProtocol: 0,
                                          isIPv6: false, fragmentOffset: 0, moreFragments: false, dataOffset: 0,
                                          dataLength: 0)

    @inlinable
    public init(source: IPAddress, destination: IPAddress, identification: UInt32, nextProtocol: UInt8,
                isIPv6: Bool, fragmentOffset: Int, moreFragments: Bool, dataOffset: Int, dataLength: Int) {
        self.source = source; self.destination = destination; self.identification = identification
        self.nextProtocol = nextProtocol; self.isIPv6 = isIPv6; self.fragmentOffset = fragmentOffset
        self.moreFragments = moreFragments; self.dataOffset = dataOffset; self.dataLength = dataLength
    }
}

/// The result of decoding one packet.
public enum DecodeOutcome: Sendable, Equatable {
    /// Decoded to the innermost layer the decoder knows.
    case complete
    /// Stopped at an IP fragment, described by `DecodedPacket.fragment`. (Kept out of the outcome so the outcome is
    /// two bytes: every layer function returns it.)
    case fragment
    /// Not IP (ARP, LLDP...): only L2 was decoded.
    case notIP
    /// Malformed or truncated: the reason, and the packet fields decoded so far stay valid.
    case malformed(DecodeError)
}

/// TCP flag bits (the decoder reports them in `DecodedPacket.tcpFlags`; the packet builder takes them).
public enum TCPFlags {
    public static let fin: UInt8 = 0x01
    public static let syn: UInt8 = 0x02
    public static let rst: UInt8 = 0x04
    public static let psh: UInt8 = 0x08
    public static let ack: UInt8 = 0x10
    public static let urg: UInt8 = 0x20
    public static let ece: UInt8 = 0x40
    public static let cwr: UInt8 = 0x80
    /// SYN+ACK.
    public static let synAck: UInt8 = syn | ack
    /// PSH+ACK.
    public static let pshAck: UInt8 = psh | ack
    /// FIN+ACK.
    public static let finAck: UInt8 = fin | ack
}
