/// The headers a packet carried, as a bit set (one bit per protocol, set if seen at any depth).
public struct Layers: OptionSet, Sendable, Hashable, BitwiseCopyable {
    public var rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let ethernet = Layers(rawValue: 1 << 0)
    public static let vlan = Layers(rawValue: 1 << 1)
    /// Two or more stacked VLAN tags (802.1ad or repeated 802.1Q).
    public static let qinq = Layers(rawValue: 1 << 2)
    public static let mpls = Layers(rawValue: 1 << 3)
    public static let pppoe = Layers(rawValue: 1 << 4)
    public static let ipv4 = Layers(rawValue: 1 << 5)
    public static let ipv6 = Layers(rawValue: 1 << 6)
    /// An IP fragment (IPv4 MF/offset or IPv6 fragment header) at any depth.
    public static let fragment = Layers(rawValue: 1 << 7)
    public static let gre = Layers(rawValue: 1 << 8)
    public static let erspan = Layers(rawValue: 1 << 9)
    /// IP directly inside IP (4in4, 6in4, 4in6, 6in6).
    public static let ipInIP = Layers(rawValue: 1 << 10)
    public static let gtpu = Layers(rawValue: 1 << 11)
    public static let tcp = Layers(rawValue: 1 << 12)
    public static let udp = Layers(rawValue: 1 << 13)
    public static let icmp = Layers(rawValue: 1 << 14)
    public static let sll = Layers(rawValue: 1 << 15)
    /// This packet's innermost payload was completed by IP reassembly.
    public static let reassembled = Layers(rawValue: 1 << 16)

    /// Names for summaries, in a fixed order.
    public static let named: [(String, Layers)] = [
        ("ethernet", .ethernet), ("sll", .sll), ("vlan", .vlan), ("qinq", .qinq), ("mpls", .mpls),
        ("pppoe", .pppoe), ("gre", .gre), ("erspan", .erspan), ("ip_in_ip", .ipInIP), ("gtpu", .gtpu),
        ("ipv4", .ipv4), ("ipv6", .ipv6), ("fragments", .fragment), ("reassembled", .reassembled),
        ("tcp", .tcp), ("udp", .udp), ("icmp", .icmp),
    ]
}

/// IP protocol numbers used by the decoder.
public enum IPProtocol {
    public static let icmp: UInt8 = 1
    public static let ipv4: UInt8 = 4
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
    public static let ipv6: UInt8 = 41
    public static let gre: UInt8 = 47
    public static let icmpv6: UInt8 = 58
}

/// Link types of captured frames (values are libpcap's LINKTYPE_* numbers).
public enum LinkType: UInt16, Sendable, BitwiseCopyable {
    /// BSD loopback: a 4-byte address family in the writer's byte order.
    case null = 0
    case ethernet = 1
    /// OpenBSD loopback: a 4-byte address family in network order.
    case loop = 108
    case raw = 101
    case linuxSLL = 113
    case ipv4 = 228
    case ipv6 = 229
    case linuxSLL2 = 276
}
