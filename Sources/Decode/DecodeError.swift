/// Why a packet could not be decoded (or a layer was given up on). Raw values index counter arrays and are never
/// renumbered: add new reasons at the end.
public enum DecodeError: UInt8, CaseIterable, Sendable {
    case ethernetTruncated = 0
    case vlanTruncated
    case mplsTruncated
    case mplsUnknownPayload
    case pppoeTruncated
    case pppoeBadHeader
    case ipv4Truncated
    case ipv4BadVersion
    case ipv4BadHeaderLength
    case ipv4BadTotalLength
    case ipv4BadOptions
    case ipv6Truncated
    case ipv6BadVersion
    case ipv6ExtensionTruncated
    case ipv6TooManyExtensions
    case ipv6Jumbogram
    case tcpTruncated
    case tcpBadDataOffset
    case tcpBadOptions
    case udpTruncated
    case udpBadLength
    case greTruncated
    case greUnsupported
    case erspanTruncated
    case gtpuTruncated
    case gtpuBadExtension
    case gtpuUnknownPayload
    case sllTruncated
    case unsupportedLinkType
    case tooManyEncapsulations
    case fragmentBadOffset
    case fragmentTooLarge
    case fragmentOverlapConflict
    case fragmentBudgetExceeded
    case fragmentTimeout
    case frameTooLarge
    case loopbackTruncated

    /// Stable snake_case name used in summaries and JSON.
    public var name: String {
        switch self {
        case .ethernetTruncated: "ethernet_truncated"
        case .vlanTruncated: "vlan_truncated"
        case .mplsTruncated: "mpls_truncated"
        case .mplsUnknownPayload: "mpls_unknown_payload"
        case .pppoeTruncated: "pppoe_truncated"
        case .pppoeBadHeader: "pppoe_bad_header"
        case .ipv4Truncated: "ipv4_truncated"
        case .ipv4BadVersion: "ipv4_bad_version"
        case .ipv4BadHeaderLength: "ipv4_bad_header_length"
        case .ipv4BadTotalLength: "ipv4_bad_total_length"
        case .ipv4BadOptions: "ipv4_bad_options"
        case .ipv6Truncated: "ipv6_truncated"
        case .ipv6BadVersion: "ipv6_bad_version"
        case .ipv6ExtensionTruncated: "ipv6_extension_truncated"
        case .ipv6TooManyExtensions: "ipv6_too_many_extensions"
        case .ipv6Jumbogram: "ipv6_jumbogram_unsupported"
        case .tcpTruncated: "tcp_truncated"
        case .tcpBadDataOffset: "tcp_bad_data_offset"
        case .tcpBadOptions: "tcp_bad_options"
        case .udpTruncated: "udp_truncated"
        case .udpBadLength: "udp_bad_length"
        case .greTruncated: "gre_truncated"
        case .greUnsupported: "gre_unsupported"
        case .erspanTruncated: "erspan_truncated"
        case .gtpuTruncated: "gtpu_truncated"
        case .gtpuBadExtension: "gtpu_bad_extension"
        case .gtpuUnknownPayload: "gtpu_unknown_payload"
        case .sllTruncated: "sll_truncated"
        case .unsupportedLinkType: "unsupported_link_type"
        case .tooManyEncapsulations: "too_many_encapsulations"
        case .fragmentBadOffset: "fragment_bad_offset"
        case .fragmentTooLarge: "fragment_too_large"
        case .fragmentOverlapConflict: "fragment_overlap_conflict"
        case .fragmentBudgetExceeded: "fragment_budget_exceeded"
        case .fragmentTimeout: "fragment_timeout"
        case .frameTooLarge: "frame_too_large"
        case .loopbackTruncated: "loopback_truncated"
        }
    }
}

/// Things seen that are not errors but are worth counting (the packet is still used).
public enum DecodeNotice: UInt8, CaseIterable, Sendable {
    /// UDP port 2152 carried something that is not GTP-U; it was left alone as plain UDP.
    case gtpuInvalidOnPort2152 = 0
    /// GTP-U signalling (echo, error indication, end marker...): no inner packet.
    case gtpuSignalling
    /// The IP total length is larger than what was captured (snap length): parsed what is there.
    case ipCapturedShort
    /// Not IP (ARP, LLDP, ...): counted, not decoded further.
    case nonIP
    /// IP protocol other than TCP/UDP/tunnels (ICMP, ...).
    case otherTransport

    public var name: String {
        switch self {
        case .gtpuInvalidOnPort2152: "gtpu_invalid_on_udp_2152"
        case .gtpuSignalling: "gtpu_signalling"
        case .ipCapturedShort: "ip_captured_short"
        case .nonIP: "non_ip"
        case .otherTransport: "other_transport"
        }
    }
}
