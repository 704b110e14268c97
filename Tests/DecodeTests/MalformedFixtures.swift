import Decode
import PacketCraft

/// Reasons the decoder itself never returns: they belong to reassembly and the capture path
/// (`unsupportedLinkType` cannot happen because `LinkType` is closed).
let reasonsNotFromDecoder: Set<DecodeError> = [
    .unsupportedLinkType, .fragmentBadOffset, .fragmentTooLarge, .fragmentOverlapConflict, .fragmentBudgetExceeded,
    .fragmentTimeout, .frameTooLarge,
]

/// Packets that must fail with exactly one reason each.
let malformedFixtures: [Fixture] = makeMalformedFixtures()

// swiftlint:disable:next function_body_length
func makeMalformedFixtures() -> [Fixture] {
    var f: [Fixture] = []
    func bad(_ name: String, _ link: LinkType = .ethernet, _ bytes: [UInt8], _ reason: DecodeError,
             layers: Layers? = nil, src: IPAddress? = nil, dst: IPAddress? = nil, ports: (UInt16, UInt16)? = nil,
             tunnelDepth: Int? = nil, teid: UInt32? = nil, vlans: [UInt16]? = nil)
    {
        f.append(Fixture(name, link, bytes, .malformed(reason), strict: false, layers: layers, src: src, dst: dst,
                         ports: ports, vlans: vlans, tunnelDepth: tunnelDepth, teid: teid))
    }
    /// Builds `layers`, lets `edit` poke the bytes (given each layer's offset), and returns them.
    func poked(_ layers: [Layer], _ edit: (inout [UInt8], [Int]) -> Void) -> [UInt8] {
        var (bytes, offsets) = PacketBuilder.buildWithOffsets(layers)
        edit(&bytes, offsets)
        return bytes
    }
    /// The first `n` bytes of `layers`.
    func cut(_ layers: [Layer], _ n: Int) -> [UInt8] { Array(PacketBuilder.build(layers).prefix(n)) }

    let tcp4: [Layer] = [eth0, ip4, tcpSeg, pl]
    let udp4: [Layer] = [eth0, ip4, udpDgram, pl]
    let udp6: [Layer] = [eth0, ip6, udpDgram, pl]

    // MARK: L2

    bad("empty Ethernet frame", .ethernet, [], .ethernetTruncated)
    bad("Ethernet header cut at 13 bytes", .ethernet, cut(tcp4, 13), .ethernetTruncated)
    bad("bridged Ethernet cut inside GRE", .ethernet, cut([eth0, outer4, .gre(), eth0, ip4], 14 + 20 + 4 + 10),
        .ethernetTruncated, src: t4a, dst: t4b, tunnelDepth: 1)
    bad("MPLS pseudowire without room for the inner Ethernet", .ethernet,
        PacketBuilder.build([eth0, .mpls(label: 3), .mplsPseudowireControlWord, .payload([0, 1, 2])]),
        .ethernetTruncated)
    bad("VLAN tag cut", .ethernet, cut([eth0, .vlan(id: 5), ip4], 16), .vlanTruncated)
    bad("second VLAN tag cut", .ethernet, cut([eth0, .vlan(id: 5, tpid: 0x88a8), .vlan(id: 6), ip4], 20),
        .vlanTruncated, vlans: [5])
    bad("MPLS label cut", .ethernet, cut([eth0, .mpls(label: 1), ip4], 16), .mplsTruncated)
    bad("MPLS stack without bottom of stack", .ethernet, cut([eth0, .mpls(label: 1), .mpls(label: 2), ip4], 18),
        .mplsTruncated)
    bad("MPLS stack with nothing after it", .ethernet, PacketBuilder.build([eth0, .mpls(label: 1)]), .mplsTruncated)
    bad("MPLS carrying an unknown first nibble", .ethernet,
        PacketBuilder.build([eth0, .mpls(label: 1), .payload([0x50] + [UInt8](repeating: 0, count: 30))]),
        .mplsUnknownPayload)
    bad("PPPoE header cut", .ethernet, cut([eth0, .pppoeSession(id: 1), ip4], 14 + 7), .pppoeTruncated)
    bad("PPPoE length 0", .ethernet, poked([eth0, .pppoeSession(id: 1), ip4, udpDgram]) { b, o in
        b.poke(UInt16(0), at: o[1] + 4)
    }, .pppoeTruncated)
    bad("PPP protocol cut after its first byte", .ethernet,
        PacketBuilder.build([.ethernet(etherTypeOverride: 0x8864), .payload([0x11, 0, 0, 1, 0, 1, 0x00, 0x21])]),
        .pppoeTruncated)
    bad("PPPoE version 2", .ethernet, poked([eth0, .pppoeSession(id: 1), ip4, udpDgram]) { b, o in
        b[o[1]] = 0x21
    }, .pppoeBadHeader)
    bad("PPPoE discovery code in a session frame", .ethernet, poked([eth0, .pppoeSession(id: 1), ip4, udpDgram]) { b, o in
        b[o[1] + 1] = 0x09
    }, .pppoeBadHeader)
    bad("Linux SLL header cut", .linuxSLL, Array(PacketBuilder.sllHeader(protocol: 0x0800).prefix(15)), .sllTruncated)
    bad("empty Linux SLL frame", .linuxSLL, [], .sllTruncated)
    bad("Linux SLL2 header cut", .linuxSLL2, Array(PacketBuilder.sll2Header(protocol: 0x0800).prefix(19)),
        .sllTruncated)

    bad("loopback header cut", .null, [2, 0, 0], .loopbackTruncated)
    bad("empty loop frame", .loop, [], .loopbackTruncated)
    bad("loopback IPv4 cut", .loop, PacketBuilder.loopbackHeader(family: 2, bigEndian: true) + [0x45, 0],
        .ipv4Truncated)

    // MARK: IPv4

    bad("IPv4 header cut at 19 bytes", .ethernet, cut(tcp4, 14 + 19), .ipv4Truncated)
    bad("IPv4 options cut", .ethernet, cut([eth0, .ipv4(src: a4, dst: b4, options: [1, 1, 1, 1]), tcpSeg], 14 + 22),
        .ipv4Truncated)
    bad("empty raw frame", .raw, [], .ipv4Truncated)
    bad("raw IPv4 cut", .ipv4, cut([ip4, udpDgram], 10), .ipv4Truncated)
    bad("Linux SLL IPv4 cut", .linuxSLL, PacketBuilder.sllHeader(protocol: 0x0800) + [0x45, 0, 0], .ipv4Truncated)
    bad("IPv6 bytes behind EtherType 0x0800", .ethernet,
        PacketBuilder.build([.ethernet(etherTypeOverride: 0x0800), ip6, udpDgram]), .ipv4BadVersion)
    bad("raw frame with version 5", .raw, poked([ip4, udpDgram]) { b, _ in b[0] = 0x55 }, .ipv4BadVersion)
    bad("IPv4 header length 16", .ethernet, poked(tcp4) { b, o in b[o[1]] = 0x44 }, .ipv4BadHeaderLength)
    bad("IPv4 header length 0", .ethernet, poked(tcp4) { b, o in b[o[1]] = 0x40 }, .ipv4BadHeaderLength)
    bad("IPv4 total length below the header length", .ethernet,
        poked(tcp4) { b, o in b.poke(UInt16(19), at: o[1] + 2) }, .ipv4BadTotalLength)
    bad("IPv4 total length below the options", .ethernet,
        poked([eth0, .ipv4(src: a4, dst: b4, options: [1, 1, 1, 1]), tcpSeg]) { b, o in
            b.poke(UInt16(20), at: o[1] + 2)
        }, .ipv4BadTotalLength)
    bad("IPv4 option length 1", .ethernet,
        PacketBuilder.build([eth0, .ipv4(src: a4, dst: b4, options: [0x94, 1, 0, 0]), tcpSeg]), .ipv4BadOptions)
    bad("IPv4 option longer than the header", .ethernet,
        PacketBuilder.build([eth0, .ipv4(src: a4, dst: b4, options: [1, 0x44, 12, 5, 0, 0, 0, 0]), tcpSeg]),
        .ipv4BadOptions)
    bad("IPv4 option kind without a length byte", .ethernet,
        PacketBuilder.build([eth0, .ipv4(src: a4, dst: b4, options: [1, 1, 1, 0x07]), tcpSeg]), .ipv4BadOptions)

    // MARK: IPv6

    bad("IPv6 header cut at 39 bytes", .ethernet, cut(udp6, 14 + 39), .ipv6Truncated)
    bad("raw IPv6 cut", .raw, cut([ip6, udpDgram], 39), .ipv6Truncated)
    bad("IPv4 bytes behind EtherType 0x86DD", .ethernet,
        PacketBuilder.build([.ethernet(etherTypeOverride: 0x86dd), ip4, udpDgram, pl]), .ipv6BadVersion)
    bad("IPv4 bytes behind PPP protocol 0x0057", .ethernet,
        PacketBuilder.build([eth0, .pppoeSession(id: 1, pppProtocolOverride: 0x0057), ip4, udpDgram, pl]),
        .ipv6BadVersion)
    bad("link type IPv6 with an IPv4 packet", .ipv6, PacketBuilder.build([ip4, udpDgram, pl]), .ipv6BadVersion)
    bad("IPv6 hop-by-hop header cut", .ethernet,
        cut([eth0, ip6, .ipv6Extension(type: 0, body: [5, 2, 0, 0]), udpDgram], 14 + 41), .ipv6ExtensionTruncated,
        src: a6, dst: b6)
    bad("IPv6 extension length past the payload", .ethernet,
        poked([eth0, ip6, .ipv6Extension(type: 60, body: []), udpDgram, pl]) { b, o in b[o[2] + 1] = 9 },
        .ipv6ExtensionTruncated)
    bad("IPv6 fragment header cut", .ethernet,
        cut([eth0, ip6, .ipv6Fragment(offset: 8, more: true, id: 1), pl], 14 + 40 + 6), .ipv6ExtensionTruncated)
    bad("IPv6 authentication header cut", .ethernet,
        cut([eth0, ip6, .ipv6Extension(type: 51, body: [UInt8](repeating: 0, count: 22)), udpDgram], 14 + 40 + 20),
        .ipv6ExtensionTruncated)
    bad("IPv6 with 17 extension headers", .ethernet,
        PacketBuilder.build([eth0, ip6] + Array(repeating: .ipv6Extension(type: 60, body: []), count: 17)
                            + [udpDgram, pl]), .ipv6TooManyExtensions, src: a6, dst: b6)
    bad("IPv6 jumbogram", .ethernet,
        poked([eth0, ip6, .ipv6Extension(type: 0, body: [0xc2, 4, 0, 1, 0, 0]), udpDgram, pl]) { b, o in
            b.poke(UInt16(0), at: o[1] + 4)
        }, .ipv6Jumbogram)

    // MARK: TCP / UDP

    bad("TCP header cut at 19 bytes", .ethernet, cut(tcp4, 14 + 20 + 19), .tcpTruncated, src: a4, dst: b4)
    bad("TCP options beyond the IP total length (not a snap-length cut)", .ethernet,
        poked([eth0, ip4, .tcp(src: 1, dst: 2, options: TCPOption.mss(1460))]) { b, o in
            b.poke(UInt16(20 + 22), at: o[1] + 2)  // IPv4 total length ends inside the options
            PacketBuilder.fixIPv4HeaderChecksum(&b, at: o[1])
        }, .tcpTruncated)
    bad("TCP data offset 60 with a 20-byte segment", .ethernet,
        poked([eth0, ip4, .tcp(src: 1, dst: 2)]) { b, o in b[o[2] + 12] = 0xf0 }, .tcpTruncated)
    bad("TCP data offset 16", .ethernet, poked(tcp4) { b, o in b[o[2] + 12] = 0x40 }, .tcpBadDataOffset,
        src: a4, dst: b4)
    bad("TCP data offset 0", .ethernet, poked(tcp4) { b, o in b[o[2] + 12] = 0x00 }, .tcpBadDataOffset)
    bad("TCP option length 1", .ethernet,
        PacketBuilder.build([eth0, ip4, .tcp(src: 1, dst: 2, options: [2, 1, 0, 0]), pl]), .tcpBadOptions,
        ports: (1, 2))
    bad("TCP option longer than the header", .ethernet,
        PacketBuilder.build([eth0, ip4, .tcp(src: 1, dst: 2, options: TCPOption.nop + [3, 9, 1]), pl]),
        .tcpBadOptions)
    bad("TCP option kind without a length byte", .ethernet,
        PacketBuilder.build([eth0, ip6, .tcp(src: 1, dst: 2, options: [1, 1, 1, 8]), pl]), .tcpBadOptions)
    bad("UDP header cut at 7 bytes", .ethernet, cut(udp4, 14 + 20 + 7), .udpTruncated)
    bad("UDP length 7", .ethernet, poked(udp4) { b, o in b.poke(UInt16(7), at: o[2] + 4) }, .udpBadLength,
        src: a4, dst: b4)
    bad("UDP length 0", .ethernet, poked(udp6) { b, o in b.poke(UInt16(0), at: o[2] + 4) }, .udpBadLength)

    // MARK: GRE / ERSPAN

    bad("GRE header cut at 3 bytes", .ethernet, cut([eth0, outer4, .gre(), ip4], 14 + 20 + 3), .greTruncated)
    bad("GRE key cut", .ethernet, cut([eth0, outer4, .gre(key: 1), ip4], 14 + 20 + 6), .greTruncated)
    bad("GRE checksum+key+sequence cut", .ethernet,
        cut([eth0, outer4, .gre(key: 1, sequence: 2, checksum: true), ip4], 14 + 20 + 12), .greTruncated)
    bad("GRE version 2", .ethernet, poked([eth0, outer4, .gre(), ip4, udpDgram]) { b, o in b[o[2] + 1] |= 2 },
        .greUnsupported)
    bad("GRE with source routing", .ethernet, poked([eth0, outer4, .gre(), ip4, udpDgram]) { b, o in b[o[2]] |= 0x40 },
        .greUnsupported)
    bad("PPTP GRE without a key", .ethernet,
        poked([eth0, outer4, .gre(protocolOverride: 0x880b), pl]) { b, o in b[o[2] + 1] |= 1 }, .greUnsupported)
    bad("GRE version 1 that is not PPP", .ethernet,
        poked([eth0, outer4, .gre(key: 1), ip4, udpDgram]) { b, o in b[o[2] + 1] |= 1 }, .greUnsupported)
    bad("ERSPAN II header cut", .ethernet, cut([eth0, outer4, .erspanII(session: 1), eth0, ip4], 14 + 20 + 8 + 4),
        .erspanTruncated, src: t4a, dst: t4b)
    bad("ERSPAN III header cut", .ethernet,
        PacketBuilder.build([eth0, outer4, .gre(sequence: 1, protocolOverride: 0x22eb), .payload([0x20, 0, 0, 5])]),
        .erspanTruncated)
    bad("ERSPAN III platform sub-header cut", .ethernet,
        PacketBuilder.build([eth0, outer4, .gre(sequence: 1, protocolOverride: 0x22eb),
                             .payload([0x20, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0])]),
        .erspanTruncated)

    // MARK: GTP-U

    bad("GTP-U optional fields cut by the GTP-U length", .ethernet,
        poked([eth0, outer4, gtpuUDP, .gtpu(teid: 8, sequence: 1)]) { b, o in b.poke(UInt16(2), at: o[3] + 2) },
        .gtpuTruncated, teid: 8)
    bad("GTP-U S flag with length 0", .ethernet,
        poked([eth0, outer4, gtpuUDP, .gtpu(teid: 8, sequence: 1)]) { b, o in b.poke(UInt16(0), at: o[3] + 2) },
        .gtpuTruncated)
    bad("GTP-U extension length 0", .ethernet,
        PacketBuilder.build([eth0, outer4, gtpuUDP,
                             .gtpu(teid: 8, extensions: [GTPUExtension(type: 0x85, content: [0, 1], lengthOverride: 0)]),
                             ip4, udpDgram]), .gtpuBadExtension, teid: 8)
    bad("GTP-U extension longer than the message", .ethernet,
        PacketBuilder.build([eth0, outer4, gtpuUDP,
                             .gtpu(teid: 8, extensions: [GTPUExtension(type: 0x85, content: [0, 1], lengthOverride: 9)]),
                             .payload([0x45, 0, 0, 0])]), .gtpuBadExtension)
    bad("GTP-U extension chain pointing past the message", .ethernet,
        poked([eth0, outer4, gtpuUDP, .gtpu(teid: 8, extensions: [.pduSessionContainer(qfi: 1)])]) { b, _ in
            b[b.count - 1] = 0x85  // next extension type of the last header
        }, .gtpuBadExtension)
    bad("GTP-U chain of 33 extension headers", .ethernet,
        PacketBuilder.build([eth0, outer4, gtpuUDP,
                             .gtpu(teid: 8, extensions: Array(repeating: .pdcpPDUNumber(1), count: 33)), ip4,
                             udpDgram]), .gtpuBadExtension)
    bad("GTP-U T-PDU without a payload", .ethernet, PacketBuilder.build([eth0, outer4, gtpuUDP, .gtpu(teid: 8)]),
        .gtpuUnknownPayload, teid: 8)
    bad("GTP-U T-PDU carrying Ethernet", .ethernet,
        PacketBuilder.build([eth0, outer4, gtpuUDP, .gtpu(teid: 8, sequence: 4), eth0, ip4, udpDgram]),
        .gtpuUnknownPayload)
    bad("GTP-U inner TCP with a bad data offset", .ethernet,
        poked([eth0, outer4, gtpuUDP, .gtpu(teid: 0xabc), ip4, tcpSeg, pl]) { b, o in b[o[5] + 12] = 0x30 },
        .tcpBadDataOffset, src: a4, dst: b4, tunnelDepth: 1, teid: 0xabc)
    bad("GTP-U inner IPv4 cut", .ethernet,
        PacketBuilder.build([eth0, outer4, gtpuUDP, .gtpu(teid: 1), .payload([0x45, 0, 0, 20, 0, 0])]),
        .ipv4Truncated, tunnelDepth: 1, teid: 1)

    // MARK: Nesting limits

    do {
        var nest: [Layer] = [eth0]
        for k in 0..<9 { nest.append(.ipv4(src: IPAddress(ipv4: 0x0a00_0000 + UInt32(k)), dst: t4b)) }
        bad("nine IP-in-IP encapsulations", .ethernet, PacketBuilder.build(nest + [ip4, udpDgram, pl]),
            .tooManyEncapsulations, tunnelDepth: 8)
        var gre: [Layer] = [eth0]
        for _ in 0..<9 { gre += [outer6, .gre(key: 7)] }
        bad("nine GRE encapsulations", .ethernet, PacketBuilder.build(gre + [ip4, udpDgram, pl]),
            .tooManyEncapsulations, tunnelDepth: 8)
        var gtp: [Layer] = [eth0]
        for k in 0..<9 { gtp += [outer4, gtpuUDP, .gtpu(teid: UInt32(k))] }
        bad("nine GTP-U encapsulations", .ethernet, PacketBuilder.build(gtp + [ip4, udpDgram, pl]),
            .tooManyEncapsulations, tunnelDepth: 8, teid: 8)
        var pw: [Layer] = [eth0]
        for _ in 0..<9 { pw += [.mpls(label: 16), .mplsPseudowireControlWord, eth0] }
        bad("nine MPLS pseudowires", .ethernet, PacketBuilder.build(pw + [ip4, udpDgram, pl]),
            .tooManyEncapsulations, tunnelDepth: 8)
    }
    return f
}
