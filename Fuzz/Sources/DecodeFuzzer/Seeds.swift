// Seed inputs for the decoder harness: one frame per encapsulation the decoder knows, on each link type, and
// fragment sequences (in order, reversed, overlapping) that reassemble. Built with PacketCraft.
import Decode
import FuzzSupport
import PacketCraft

func decodeSeeds() -> [Seed] {
    let a4 = IPAddress("10.0.0.1")!, b4 = IPAddress("192.0.2.80")!
    let a6 = IPAddress("2001:db8::1")!, b6 = IPAddress("2001:db8::80")!
    let http = ascii("GET / HTTP/1.1\r\nHost: edge.example\r\n\r\n")
    let tcpOptions = TCPOption.mss(1460) + TCPOption.sackPermitted + TCPOption.timestamps(value: 1, echo: 0)
        + TCPOption.nop + TCPOption.windowScale(7)
    let tcp: [Layer] = [.tcp(src: 40000, dst: 80, seq: 1, flags: TCPFlags.pshAck), .payload(http)]
    let syn: [Layer] = [.tcp(src: 40001, dst: 443, flags: TCPFlags.syn, options: tcpOptions)]
    let udp: [Layer] = [.udp(src: 50000, dst: 443), .payload([UInt8](repeating: 0xc3, count: 40))]
    let ip4: Layer = .ipv4(src: a4, dst: b4), ip6: Layer = .ipv6(src: a6, dst: b6)
    let inner4 = PacketBuilder.build([ip4] + tcp)
    let inner6 = PacketBuilder.build([ip6] + udp)

    var seeds: [Seed] = []
    func add(_ name: String, _ frames: [[UInt8]], link linkType: LinkType = .ethernet, budget: UInt8 = 3,
             steps: [UInt8] = []) {
        var bytes: [UInt8] = [UInt8(linkTypes.firstIndex(of: linkType)!), budget]
        for (i, f) in frames.enumerated() {
            bytes += [i < steps.count ? steps[i] : 0] + bigEndian(UInt64(f.count), count: 2) + f
        }
        seeds.append(Seed("\(seeds.count)-\(name)", bytes))
    }
    func eth(_ layers: [Layer]) -> [UInt8] { PacketBuilder.build([.ethernet()] + layers) }

    add("ipv4-tcp", [eth([ip4] + tcp)])
    add("ipv4-syn-options", [eth([.ipv4(src: a4, dst: b4, options: [0x94, 4, 0, 0])] + syn)])
    add("ipv6-udp", [eth([ip6] + udp)])
    add("vlan", [eth([.vlan(id: 100), ip4] + tcp)])
    add("qinq", [eth([.vlan(id: 10, tpid: 0x88a8), .vlan(id: 20), .vlan(id: 30, tpid: 0x9100), ip6] + udp)])
    add("mpls", [eth([.mpls(label: 100), .mpls(label: 200), ip4] + tcp)])
    add("mpls-pseudowire", [eth([.mpls(label: 16), .mplsPseudowireControlWord, .ethernet(), ip6] + udp)])
    add("pppoe-ipv4", [eth([.pppoeSession(id: 1), ip4] + tcp)])
    add("pppoe-ipv6", [eth([.pppoeSession(id: 2), ip6] + udp)])
    add("ipv6-extensions", [eth([ip6, .ipv6Extension(type: 0, body: [1, 0]), .ipv6Extension(type: 43, body: [0, 0]),
                                .ipv6Extension(type: 60, body: []), .ipv6Extension(type: 51, body: [0, 0, 0, 0])]
                               + tcp)])
    add("ipv6-atomic-fragment", [eth([ip6, .ipv6Fragment(offset: 0, more: false, id: 9)] + udp)])
    add("ipv6-no-next-header", [eth([.ipv6(src: a6, dst: b6, nextHeaderOverride: 59)])])
    add("gre-key-seq-checksum", [eth([ip4, .gre(key: 7, sequence: 1, checksum: true), ip6] + udp)])
    add("gre-ethernet", [eth([ip4, .gre(key: 7), .ethernet(), ip4] + tcp)])
    add("gre-mpls", [eth([ip6, .gre(), .mpls(label: 5), ip4] + tcp)])
    add("erspan-ii", [eth([ip4, .erspanII(session: 3, vlan: 12), .ethernet(), .vlan(id: 12), ip4] + tcp)])
    // ERSPAN type III: a 12-byte header whose last bit announces the 8-byte platform subheader.
    let erspan3: [UInt8] = [UInt8](repeating: 0, count: 11) + [1] + [UInt8](repeating: 0, count: 8)
    add("erspan-iii", [eth([ip4, .gre(sequence: 1, protocolOverride: 0x22eb), .payload(erspan3), .ethernet(), ip6]
                           + udp)])
    // PPTP: enhanced GRE (version 1, key = payload length + call id, sequence), PPP address/control, IPv4.
    let pptp: [UInt8] = [0x30, 0x01, 0x88, 0x0b] + bigEndian(UInt64(inner4.count + 4), count: 2) + [0, 1, 0, 0, 0, 1]
        + [0xff, 0x03, 0x00, 0x21] + inner4
    add("pptp", [eth([.ipv4(src: a4, dst: b4, protocolOverride: 47), .payload(pptp)])])
    add("gtpu", [eth([ip4, .udp(src: 2152, dst: 2152),
                      .gtpu(teid: 0x1234, sequence: 1, extensions: [.pduSessionContainer(qfi: 9), .udpPort(2152)]),
                      .ipv4(src: IPAddress("100.64.0.7")!, dst: b4)] + tcp)])
    add("gtpu-ipv6-inner", [eth([ip6, .udp(src: 2152, dst: 2152), .gtpu(teid: 5), ip6] + udp)])
    add("gtpu-echo", [eth([ip4, .udp(src: 2152, dst: 2152), .gtpu(teid: 0, messageType: 1, sequence: 3)])])
    add("ip-in-ip", [eth([ip6, ip4] + tcp)])
    add("6in4", [eth([ip4, ip6] + udp)])
    add("icmp", [eth([ip4, .icmp(type: 8, body: [0, 1, 0, 1])])])
    add("icmpv6", [eth([ip6, .icmp(type: 128, body: [0, 1, 0, 1])])])
    add("arp", [eth([.arp(senderIP: a4, targetIP: b4)])])
    add("ethernet-802.3", [eth([.payload([0x42, 0x42, 0x03, 0, 0, 0])])])

    // Link types other than Ethernet.
    add("raw-ipv4", [inner4], link: .raw)
    add("raw-ipv6", [inner6], link: .raw)
    add("linktype-ipv4", [inner4], link: .ipv4)
    add("linktype-ipv6", [inner6], link: .ipv6)
    add("sll", [PacketBuilder.sllHeader(protocol: 0x0800) + inner4], link: .linuxSLL)
    add("sll-vlan", [PacketBuilder.sllHeader(protocol: 0x8100) + [0, 5, 0x86, 0xdd] + inner6], link: .linuxSLL)
    add("sll2", [PacketBuilder.sll2Header(protocol: 0x86dd) + inner6], link: .linuxSLL2)
    add("null-ipv4", [PacketBuilder.loopbackHeader(family: 2) + inner4], link: .null)
    add("null-ipv6", [PacketBuilder.loopbackHeader(family: 30) + inner6], link: .null)
    add("loop-ipv6", [PacketBuilder.loopbackHeader(family: 24, bigEndian: true) + inner6], link: .loop)

    // Fragments: in order, reversed, overlapping, a timeout between, IPv6, a fragmented tunnel.
    let big: [Layer] = [.udp(src: 5353, dst: 5353), .payload((0..<300).map { UInt8(truncatingIfNeeded: $0) })]
    let v4 = PacketBuilder.ipv4Fragments(big, src: a4, dst: b4, id: 7, fragmentSize: 128)
    add("ipv4-fragments", v4)
    add("ipv4-fragments-reversed", v4.reversed())
    add("ipv4-fragments-overlap",
        PacketBuilder.ipv4Fragments(big, src: a4, dst: b4, id: 8, fragmentSize: 64, overlap: 16))
    add("ipv4-fragments-timeout", v4, steps: [0, 3, 0])
    add("ipv4-fragments-budget",
        v4 + PacketBuilder.ipv4Fragments(big, src: b4, dst: a4, id: 9, fragmentSize: 96), budget: 0)
    add("ipv6-fragments", PacketBuilder.ipv6Fragments(big, src: a6, dst: b6, id: 77, fragmentSize: 104,
                                                      outer: [.ethernet(), .vlan(id: 4)]))
    add("gtpu-fragments", PacketBuilder.ipv4Fragments([.udp(src: 2152, dst: 2152), .gtpu(teid: 1), ip4] + tcp,
                                                      src: a4, dst: b4, id: 10, fragmentSize: 48))
    let innerFragments = PacketBuilder.ipv4Fragments(tcp, src: a4, dst: b4, id: 11, fragmentSize: 24, outer: [])
    add("fragments-in-gre", innerFragments.map { eth([ip6, .gre(protocolOverride: 0x0800), .payload($0)]) })
    return seeds
}
