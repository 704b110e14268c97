import Decode

/// Identity of an IP datagram being reassembled: RFC 791's source, destination, protocol (IPv4 only) and
/// identification, plus the VLAN and tunnel context that keep overlapping address spaces apart. The reassembler
/// and the source's fragment steering use the same identity.
public struct FragmentKey: Hashable, Sendable {
    var source: IPAddress
    var destination: IPAddress
    var identification: UInt32
    var nextProtocol: UInt8
    var isIPv6: Bool
    var vlans: UInt64
    var tunnelSource: IPAddress
    var tunnelDestination: IPAddress

    /// The datagram of fragment `info`, found in packet `p`.
    public init(_ info: FragmentInfo, in p: DecodedPacket) {
        source = info.source
        destination = info.destination
        identification = info.identification
        nextProtocol = info.isIPv6 ? 0 : info.nextProtocol  // IPv6: the protocol is not part of the identity
        isIPv6 = info.isIPv6
        vlans = p.packedVLANs
        tunnelSource = p.tunnelDepth > 0 ? p.tunnelSource : .none
        tunnelDestination = p.tunnelDepth > 0 ? p.tunnelDestination : .none
    }
}
