import Decode

/// One protocol header of a packet to build; `PacketBuilder.build` concatenates layers outermost first.
///
/// Length, next-protocol and checksum fields are derived from the layers that follow; the `...Override` values
/// replace a derived field so tests can build packets that lie about their contents.
public enum Layer: Sendable, Hashable {
    /// Ethernet II header; the EtherType comes from the next layer unless overridden.
    case ethernet(src: MAC = .defaultSource, dst: MAC = .defaultDestination, etherTypeOverride: UInt16? = nil)
    /// One VLAN tag: `tpid` goes in the previous layer's type field (0x8100 802.1Q, 0x88A8 802.1ad).
    case vlan(id: UInt16, tpid: UInt16 = 0x8100, pcp: UInt8 = 0, etherTypeOverride: UInt16? = nil)
    /// One MPLS label stack entry; bottom-of-stack is set on the last of consecutive labels.
    case mpls(label: UInt32, ttl: UInt8 = 64, trafficClass: UInt8 = 0)
    /// The 4-byte all-zero RFC 4385 pseudowire control word (put an `.ethernet` after it).
    case mplsPseudowireControlWord
    /// PPPoE session header plus the 2-byte PPP protocol (0x0021 IPv4, 0x0057 IPv6, 0x0281 MPLS, else 0xC021 LCP).
    case pppoeSession(id: UInt16, pppProtocolOverride: UInt16? = nil)
    /// IPv4 header (options are padded with zeros to 4 bytes; `fragmentOffset` is in bytes, a multiple of 8).
    case ipv4(src: IPAddress, dst: IPAddress, ttl: UInt8 = 64, id: UInt16 = 0, dontFragment: Bool = false,
              moreFragments: Bool = false, fragmentOffset: Int = 0, options: [UInt8] = [],
              protocolOverride: UInt8? = nil)
    /// IPv6 fixed header.
    case ipv6(src: IPAddress, dst: IPAddress, hopLimit: UInt8 = 64, nextHeaderOverride: UInt8? = nil,
              flowLabel: UInt32 = 0)
    /// An IPv6 extension header of `type` (0 hop-by-hop, 43 routing, 60 destination options, 51 AH...): next-header
    /// and length bytes, then `body` padded to 8 bytes (PadN for hop-by-hop/destination options).
    case ipv6Extension(type: UInt8, body: [UInt8])
    /// IPv6 fragment header (`offset` in bytes, a multiple of 8).
    case ipv6Fragment(offset: Int, more: Bool, id: UInt32, nextHeaderOverride: UInt8? = nil)
    /// GRE (RFC 2784/2890) header with optional checksum, key and sequence number.
    case gre(key: UInt32? = nil, sequence: UInt32? = nil, checksum: Bool = false, protocolOverride: UInt16? = nil)
    /// GRE header (protocol 0x88BE, sequence number present) plus an ERSPAN type II header; put an `.ethernet` after.
    case erspanII(session: UInt16, vlan: UInt16 = 0, sequence: UInt32 = 0)
    /// GTP-U v1 header; the S, PN and E flags are set when `sequence`, `npdu` or `extensions` are given.
    case gtpu(teid: UInt32, messageType: UInt8 = 0xff, sequence: UInt16? = nil, npdu: UInt8? = nil,
              extensions: [GTPUExtension] = [])
    /// UDP header; length and checksum (over the enclosing IP pseudo-header) are computed.
    case udp(src: UInt16, dst: UInt16)
    /// TCP header (options are padded with zeros to 4 bytes; see `TCPOption`); the checksum is computed.
    case tcp(src: UInt16, dst: UInt16, seq: UInt32 = 0, ack: UInt32 = 0, flags: UInt8 = TCPFlags.ack,
             window: UInt16 = 65535, options: [UInt8] = [])
    /// ICMP (inside IPv4) or ICMPv6 (inside IPv6) message with its checksum computed; `body` follows the 4-byte header.
    case icmp(type: UInt8, code: UInt8 = 0, body: [UInt8] = [])
    /// ARP over Ethernet/IPv4 (operation 1 request, 2 reply).
    case arp(operation: UInt16 = 1, senderMAC: MAC = .defaultSource, senderIP: IPAddress,
             targetMAC: MAC = .zero, targetIP: IPAddress)
    /// Raw bytes, copied as they are.
    case payload([UInt8])
}

/// One GTP-U extension header (3GPP TS 29.281 section 5.2).
public struct GTPUExtension: Sendable, Hashable {
    /// The extension header type (0x85 PDU session container, 0x40 UDP port, 0xC0 PDCP PDU number...).
    public var type: UInt8
    /// The contents between the length byte and the next-type byte; zero-padded so the header is a multiple of 4.
    public var content: [UInt8]
    /// Replaces the computed length byte (in 4-byte units), to build malformed headers.
    public var lengthOverride: UInt8?

    /// An extension header of `type` carrying `content`.
    public init(type: UInt8, content: [UInt8], lengthOverride: UInt8? = nil) {
        self.type = type; self.content = content; self.lengthOverride = lengthOverride
    }

    /// A PDU session container (type 0x85, TS 38.415) for QoS flow `qfi`, downlink or uplink.
    public static func pduSessionContainer(qfi: UInt8, uplink: Bool = false) -> GTPUExtension {
        GTPUExtension(type: 0x85, content: [uplink ? 0x10 : 0x00, qfi & 0x3f])
    }
    /// A UDP port extension (type 0x40), as sent with error indications.
    public static func udpPort(_ port: UInt16) -> GTPUExtension {
        GTPUExtension(type: 0x40, content: [UInt8(port >> 8), UInt8(port & 0xff)])
    }
    /// A PDCP PDU number extension (type 0xC0).
    public static func pdcpPDUNumber(_ number: UInt16) -> GTPUExtension {
        GTPUExtension(type: 0xc0, content: [UInt8(number >> 8), UInt8(number & 0xff)])
    }
}

/// Encoded TCP options to concatenate into `Layer.tcp(options:)`.
public enum TCPOption {
    /// End of option list (kind 0).
    public static let endOfList: [UInt8] = [0]
    /// No-operation padding (kind 1).
    public static let nop: [UInt8] = [1]
    /// Maximum segment size (kind 2).
    public static func mss(_ value: UInt16) -> [UInt8] { [2, 4, UInt8(value >> 8), UInt8(value & 0xff)] }
    /// Window scale shift count (kind 3).
    public static func windowScale(_ shift: UInt8) -> [UInt8] { [3, 3, shift] }
    /// SACK permitted (kind 4).
    public static let sackPermitted: [UInt8] = [4, 2]
    /// SACK blocks (kind 5), each a (left, right) edge pair.
    public static func sack(_ blocks: [(UInt32, UInt32)]) -> [UInt8] {
        var out: [UInt8] = [5, UInt8(truncatingIfNeeded: 2 + 8 * blocks.count)]
        for (l, r) in blocks { out += bigEndianBytes(l) + bigEndianBytes(r) }
        return out
    }
    /// Timestamps (kind 8).
    public static func timestamps(value: UInt32, echo: UInt32) -> [UInt8] {
        [8, 10] + bigEndianBytes(value) + bigEndianBytes(echo)
    }
}

/// The big-endian bytes of `v`.
@inline(__always)
func bigEndianBytes<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
    (0..<(T.bitWidth / 8)).map { UInt8(truncatingIfNeeded: v >> (T.bitWidth - 8 - 8 * $0)) }
}
