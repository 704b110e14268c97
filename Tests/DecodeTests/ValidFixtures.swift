import Decode
import PacketCraft
import Testing

/// Builds `layers` and returns the bytes of layer `index` to the end (the expected payload of ICMP, other transports).
func tail(_ layers: [Layer], from index: Int) -> [UInt8] {
    let (bytes, offsets) = PacketBuilder.buildWithOffsets(layers)
    return Array(bytes[offsets[index]...])
}

/// Fixtures that decode completely, stop at a fragment, or are not IP.
let validFixtures: [Fixture] = makeValidFixtures()

// swiftlint:disable:next function_body_length
func makeValidFixtures() -> [Fixture] {
    var f: [Fixture] = []
    let tcpLayers: Layers = [.ethernet, .ipv4, .tcp]

    // MARK: Ethernet, VLAN, MPLS, PPPoE

    f.append(Fixture("Ethernet II IPv4 TCP", .ethernet, PacketBuilder.build([eth0, ip4, tcpSeg, pl]),
                     layers: tcpLayers, src: a4, dst: b4, ports: tcpPorts, proto: 6, payload: body,
                     check: { p in
                         #expect(p.tcpFlags == TCPFlags.pshAck)
                         #expect(p.tcpSequence == 1000 && p.tcpAcknowledgment == 2000 && p.tcpWindow == 65535)
                         #expect(p.ipTTL == 64)
                         #expect(p.tcpMSS == 0 && p.tcpWindowScale == 0xff && !p.tcpSACKPermitted && !p.tcpTimestamp)
                     }))
    f.append(Fixture("Ethernet II IPv6 UDP", .ethernet,
                     PacketBuilder.build([eth0, .ipv6(src: a6, dst: b6, hopLimit: 33), udpDgram, pl]),
                     layers: [.ethernet, .ipv6, .udp], src: a6, dst: b6, ports: udpPorts, proto: 17, payload: body,
                     check: { p in #expect(p.ipTTL == 33) }))
    f.append(Fixture("802.1Q IPv4 UDP", .ethernet, PacketBuilder.build([eth0, .vlan(id: 100, pcp: 5), ip4, udpDgram, pl]),
                     layers: [.ethernet, .vlan, .ipv4, .udp], src: a4, dst: b4, ports: udpPorts, proto: 17,
                     vlans: [100], payload: body))
    f.append(Fixture("QinQ 802.1ad+802.1Q IPv4 TCP", .ethernet,
                     PacketBuilder.build([eth0, .vlan(id: 10, tpid: 0x88a8), .vlan(id: 20), ip4, tcpSeg, pl]),
                     layers: [.ethernet, .vlan, .qinq, .ipv4, .tcp], src: a4, dst: b4, ports: tcpPorts, proto: 6,
                     vlans: [10, 20], payload: body))
    f.append(Fixture("triple VLAN tags IPv6 UDP", .ethernet,
                     PacketBuilder.build([eth0, .vlan(id: 10, tpid: 0x88a8), .vlan(id: 20), .vlan(id: 4095),
                                          ip6, udpDgram, pl]),
                     layers: [.ethernet, .vlan, .qinq, .ipv6, .udp], src: a6, dst: b6, ports: udpPorts, proto: 17,
                     vlans: [10, 20, 4095], payload: body))
    f.append(Fixture("five VLAN tags (0x9100, 0x9200) keep the first four ids", .ethernet,
                     PacketBuilder.build([eth0, .vlan(id: 1, tpid: 0x9100), .vlan(id: 2, tpid: 0x9200), .vlan(id: 3),
                                          .vlan(id: 4), .vlan(id: 5), ip4, udpDgram, pl]),
                     layers: [.ethernet, .vlan, .qinq, .ipv4, .udp], src: a4, dst: b4, ports: udpPorts, proto: 17,
                     vlans: [1, 2, 3, 4, 5], payload: body))
    f.append(Fixture("MPLS 1 label IPv4", .ethernet, PacketBuilder.build([eth0, .mpls(label: 100), ip4, udpDgram, pl]),
                     layers: [.ethernet, .mpls, .ipv4, .udp], src: a4, dst: b4, ports: udpPorts, proto: 17, mpls: 1,
                     payload: body))
    f.append(Fixture("MPLS 3 labels IPv4", .ethernet,
                     PacketBuilder.build([eth0, .mpls(label: 100), .mpls(label: 200), .mpls(label: 0xfffff), ip4,
                                          tcpSeg, pl]),
                     layers: [.ethernet, .mpls, .ipv4, .tcp], src: a4, dst: b4, ports: tcpPorts, proto: 6, mpls: 3,
                     payload: body))
    f.append(Fixture("MPLS 1 label IPv6", .ethernet, PacketBuilder.build([eth0, .mpls(label: 7), ip6, tcpSeg, pl]),
                     layers: [.ethernet, .mpls, .ipv6, .tcp], src: a6, dst: b6, ports: tcpPorts, proto: 6, mpls: 1,
                     payload: body))
    f.append(Fixture("MPLS 3 labels IPv6", .ethernet,
                     PacketBuilder.build([eth0, .vlan(id: 9), .mpls(label: 1), .mpls(label: 2), .mpls(label: 3), ip6,
                                          udpDgram, pl]),
                     layers: [.ethernet, .vlan, .mpls, .ipv6, .udp], src: a6, dst: b6, ports: udpPorts, proto: 17,
                     vlans: [9], mpls: 3, payload: body))
    f.append(Fixture("MPLS Ethernet pseudowire with control word", .ethernet,
                     PacketBuilder.build([eth0, .mpls(label: 16), .mpls(label: 17), .mplsPseudowireControlWord,
                                          .ethernet(src: MAC(0x0a0000000001), dst: MAC(0x0a0000000002)), .vlan(id: 55),
                                          ip4, tcpSeg, pl]),
                     layers: [.ethernet, .vlan, .mpls, .ipv4, .tcp], src: a4, dst: b4, ports: tcpPorts, proto: 6,
                     vlans: [55], mpls: 2, tunnelDepth: 1, payload: body))
    f.append(Fixture("PPPoE session IPv4", .ethernet,
                     PacketBuilder.build([eth0, .pppoeSession(id: 0x1234), ip4, tcpSeg, pl]),
                     layers: [.ethernet, .pppoe, .ipv4, .tcp], src: a4, dst: b4, ports: tcpPorts, proto: 6,
                     payload: body))
    f.append(Fixture("PPPoE session IPv6 in a VLAN", .ethernet,
                     PacketBuilder.build([eth0, .vlan(id: 300), .pppoeSession(id: 1), ip6, udpDgram, pl]),
                     layers: [.ethernet, .vlan, .pppoe, .ipv6, .udp], src: a6, dst: b6, ports: udpPorts, proto: 17,
                     vlans: [300], payload: body))
    do {
        // Address/control bytes and a compressed (one-byte) IPv4 protocol field.
        let ppp = PacketBuilder.build([eth0, .pppoeSession(id: 1, pppProtocolOverride: 0xff03), .payload([0x21]), ip4,
                                       udpDgram, pl])
        f.append(Fixture("PPPoE with address/control and compressed protocol", .ethernet, ppp,
                         layers: [.ethernet, .pppoe, .ipv4, .udp], src: a4, dst: b4, ports: udpPorts, proto: 17,
                         payload: body))
    }
    f.append(Fixture("PPPoE LCP is not IP", .ethernet,
                     PacketBuilder.build([eth0, .pppoeSession(id: 1), .payload([1, 1, 0, 4])]), .notIP,
                     layers: [.ethernet, .pppoe], notices: [.nonIP]))
    f.append(Fixture("ARP is not IP", .ethernet,
                     PacketBuilder.build([.ethernet(dst: .broadcast), .arp(senderIP: a4, targetIP: b4)]), .notIP,
                     layers: [.ethernet], notices: [.nonIP]))
    f.append(Fixture("ARP in a VLAN is not IP", .ethernet,
                     PacketBuilder.build([eth0, .vlan(id: 8), .arp(senderIP: a4, targetIP: b4)]), .notIP,
                     layers: [.ethernet, .vlan], vlans: [8], notices: [.nonIP]))
    f.append(Fixture("802.3 length field (LLC) is not IP", .ethernet,
                     PacketBuilder.build([.ethernet(etherTypeOverride: 0x0026),
                                          .payload([0x42, 0x42, 0x03] + [UInt8](repeating: 0, count: 35))]), .notIP,
                     layers: [.ethernet], notices: [.nonIP]))
    f.append(Fixture("LLDP is not IP", .ethernet,
                     PacketBuilder.build([.ethernet(etherTypeOverride: 0x88cc), .payload([2, 7, 4, 0, 0, 0, 0, 0, 1])]),
                     .notIP, layers: [.ethernet], notices: [.nonIP]))

    // MARK: IPv4 / IPv6 headers

    f.append(Fixture("IPv4 with options (router alert, NOPs, timestamp)", .ethernet,
                     PacketBuilder.build([eth0, .ipv4(src: a4, dst: b4, options: [0x94, 4, 0, 0, 1, 1,
                                                                                  0x44, 10, 5, 0, 0, 0, 0, 0, 0, 0]),
                                          udpDgram, pl]),
                     layers: [.ethernet, .ipv4, .udp], src: a4, dst: b4, ports: udpPorts, proto: 17, payload: body))
    f.append(Fixture("IPv4 options stop at end-of-list", .ethernet,
                     PacketBuilder.build([eth0, .ipv4(src: a4, dst: b4, options: [0x94, 4, 0, 0, 0, 0xff, 0xff, 0xff]),
                                          tcpSeg, pl]),
                     layers: tcpLayers, src: a4, dst: b4, ports: tcpPorts, proto: 6, payload: body))
    f.append(Fixture("IPv4 don't-fragment is not a fragment", .ethernet,
                     PacketBuilder.build([eth0, .ipv4(src: a4, dst: b4, ttl: 1, id: 77, dontFragment: true), tcpSeg, pl]),
                     layers: tcpLayers, src: a4, dst: b4, ports: tcpPorts, proto: 6, payload: body,
                     check: { p in #expect(p.ipTTL == 1) }))
    do {
        let frame = PacketBuilder.build([eth0, ip4, .tcp(src: 1, dst: 2)])
        f.append(Fixture("Ethernet padding after a short IPv4 packet is ignored", .ethernet,
                         frame + [UInt8](repeating: 0xee, count: 60 - frame.count),
                         layers: tcpLayers, src: a4, dst: b4, ports: (1, 2), proto: 6, payload: []))
    }
    do {
        let big = [UInt8](repeating: 0x5a, count: 100)
        let frame = PacketBuilder.build([eth0, ip4, tcpSeg, .payload(big)])
        f.append(Fixture("IPv4 cut by the snap length", .ethernet, Array(frame.prefix(frame.count - 40)),
                         layers: tcpLayers, src: a4, dst: b4, ports: tcpPorts, proto: 6,
                         notices: [.ipCapturedShort], payload: Array(big.prefix(60))))
        // A SYN whose options the snap length cut (zeek's truncated-header capture, snaplen 68): the fixed TCP
        // header is whole, so the segment is kept with the options that are there.
        let syn = PacketBuilder.build([eth0, ip4, .tcp(src: 1, dst: 2, flags: TCPFlags.syn,
                                                       options: TCPOption.mss(1460) + TCPOption.sackPermitted
                                                           + TCPOption.timestamps(value: 1, echo: 0))])
        f.append(Fixture("TCP options cut by the snap length", .ethernet, Array(syn.prefix(14 + 20 + 26)),
                         layers: tcpLayers, src: a4, dst: b4, ports: (1, 2), proto: 6,
                         notices: [.ipCapturedShort], payload: [],
                         check: { p in
                             #expect(p.tcpFlags == TCPFlags.syn)
                             #expect(p.tcpMSS == 1460 && p.tcpSACKPermitted && !p.tcpTimestamp)
                         }))
        let frame6 = PacketBuilder.build([eth0, ip6, udpDgram, .payload(big)])
        f.append(Fixture("IPv6 UDP cut by the snap length", .ethernet, Array(frame6.prefix(frame6.count - 30)),
                         layers: [.ethernet, .ipv6, .udp], src: a6, dst: b6, ports: udpPorts, proto: 17,
                         notices: [.ipCapturedShort], payload: Array(big.prefix(70))))
    }
    do {
        let layers: [Layer] = [eth0, ip4, .icmp(type: 8, body: [0, 1, 0, 2] + body)]
        f.append(Fixture("ICMP echo", .ethernet, PacketBuilder.build(layers),
                         layers: [.ethernet, .ipv4, .icmp], src: a4, dst: b4, proto: 1, payload: tail(layers, from: 2)))
        let layers6: [Layer] = [eth0, ip6, .icmp(type: 128, body: [0, 1, 0, 2])]
        f.append(Fixture("ICMPv6 echo", .ethernet, PacketBuilder.build(layers6),
                         layers: [.ethernet, .ipv6, .icmp], src: a6, dst: b6, proto: 58,
                         payload: tail(layers6, from: 2)))
        let sctp: [Layer] = [eth0, .ipv4(src: a4, dst: b4, protocolOverride: 132), pl]
        f.append(Fixture("other transport (SCTP)", .ethernet, PacketBuilder.build(sctp),
                         layers: [.ethernet, .ipv4], src: a4, dst: b4, proto: 132, notices: [.otherTransport],
                         payload: body))
        f.append(Fixture("IPv6 no next header", .ethernet,
                         PacketBuilder.build([eth0, .ipv6(src: a6, dst: b6, nextHeaderOverride: 59)]),
                         layers: [.ethernet, .ipv6], src: a6, dst: b6, proto: 59))
    }
    f.append(Fixture("IPv6 hop-by-hop + routing + destination options chain", .ethernet,
                     PacketBuilder.build([eth0, ip6, .ipv6Extension(type: 0, body: [5, 2, 0, 0]),
                                          .ipv6Extension(type: 43, body: [2, 1, 0, 0, 0, 0] + t6a.bytes),
                                          .ipv6Extension(type: 60, body: []), tcpSeg, pl]),
                     layers: [.ethernet, .ipv6, .tcp], src: a6, dst: b6, ports: tcpPorts, proto: 6, payload: body))
    f.append(Fixture("IPv6 authentication header", .ethernet,
                     PacketBuilder.build([eth0, ip6, .ipv6Extension(type: 51, body: [0, 0, 0, 0, 1, 0, 0, 0, 0, 7]
                                                                        + [UInt8](repeating: 0xab, count: 12)),
                                          udpDgram, pl]),
                     layers: [.ethernet, .ipv6, .udp], src: a6, dst: b6, ports: udpPorts, proto: 17, payload: body))
    f.append(Fixture("IPv6 sixteen extension headers (the limit)", .ethernet,
                     PacketBuilder.build([eth0, ip6] + Array(repeating: .ipv6Extension(type: 60, body: []), count: 16)
                                         + [udpDgram, pl]),
                     layers: [.ethernet, .ipv6, .udp], src: a6, dst: b6, ports: udpPorts, proto: 17, payload: body))
    f.append(Fixture("IPv6 atomic fragment is a whole datagram", .ethernet,
                     PacketBuilder.build([eth0, ip6, .ipv6Fragment(offset: 0, more: false, id: 99), udpDgram, pl]),
                     layers: [.ethernet, .ipv6, .udp], src: a6, dst: b6, ports: udpPorts, proto: 17, payload: body))

    // MARK: Fragments

    do {
        let datagram: [Layer] = [.udp(src: 7000, dst: 7001), .payload((0..<200).map { UInt8($0) })]
        let data = PacketBuilder.datagram(datagram, src: a4, dst: b4)
        let pieces = PacketBuilder.fragmentPieces(data, fragmentSize: 80)
        let frames = PacketBuilder.ipv4Fragments(datagram, src: a4, dst: b4, id: 0xbeef, fragmentSize: 80,
                                                 outer: [eth0, .vlan(id: 42)])
        for (k, (frame, piece)) in zip(frames, pieces).enumerated() {
            f.append(Fixture("IPv4 fragment \(["first", "middle", "last"][k])", .ethernet, frame,
                             .fragment(offset: piece.offset, more: piece.more, id: 0xbeef, proto: 17),
                             layers: [.ethernet, .vlan, .ipv4, .fragment], src: a4, dst: b4, proto: 17, vlans: [42],
                             fragmentData: piece.data))
        }
    }
    do {
        let datagram: [Layer] = [tcpSeg, .payload([UInt8](repeating: 0x77, count: 150))]
        let data = PacketBuilder.datagram(datagram, src: a6, dst: b6)
        let pieces = PacketBuilder.fragmentPieces(data, fragmentSize: 64)
        let frames = PacketBuilder.ipv6Fragments(datagram, src: a6, dst: b6, id: 0xdead_beef, fragmentSize: 64)
        for (k, (frame, piece)) in zip(frames, pieces).enumerated() {
            f.append(Fixture("IPv6 fragment \(["first", "middle", "last"][k])", .ethernet, frame,
                             .fragment(offset: piece.offset, more: piece.more, id: 0xdead_beef, proto: 6),
                             layers: [.ethernet, .ipv6, .fragment], src: a6, dst: b6, proto: 6,
                             fragmentData: piece.data))
        }
    }
    f.append(Fixture("IPv6 fragment header after destination options", .ethernet,
                     PacketBuilder.build([eth0, ip6, .ipv6Extension(type: 60, body: []),
                                          .ipv6Fragment(offset: 8, more: true, id: 7, nextHeaderOverride: 17),
                                          .payload([UInt8](repeating: 1, count: 16))]),
                     .fragment(offset: 8, more: true, id: 7, proto: 17),
                     layers: [.ethernet, .ipv6, .fragment], src: a6, dst: b6, proto: 17,
                     fragmentData: [UInt8](repeating: 1, count: 16)))
    f.append(Fixture("IPv4 fragment inside GTP-U", .ethernet,
                     PacketBuilder.build([eth0, outer4, gtpuUDP, .gtpu(teid: 5),
                                          .ipv4(src: a4, dst: b4, id: 3, moreFragments: true, protocolOverride: 6),
                                          .payload([UInt8](repeating: 2, count: 24))]),
                     .fragment(offset: 0, more: true, id: 3, proto: 6),
                     layers: [.ethernet, .ipv4, .udp, .gtpu, .fragment], src: a4, dst: b4, proto: 6,
                     tunnelDepth: 1, tunnel: (t4a, t4b), teid: 5, fragmentData: [UInt8](repeating: 2, count: 24)))

    // MARK: Tunnels

    f.append(Fixture("GRE IPv4", .ethernet, PacketBuilder.build([eth0, outer4, .gre(), ip4, udpDgram, pl]),
                     layers: [.ethernet, .ipv4, .gre, .udp], src: a4, dst: b4, ports: udpPorts, proto: 17,
                     tunnelDepth: 1, tunnel: (t4a, t4b), payload: body))
    f.append(Fixture("GRE key+sequence+checksum IPv6", .ethernet,
                     PacketBuilder.build([eth0, outer4, .gre(key: 0x1234, sequence: 9, checksum: true), ip6, tcpSeg,
                                          pl]),
                     layers: [.ethernet, .ipv4, .gre, .ipv6, .tcp], src: a6, dst: b6, ports: tcpPorts, proto: 6,
                     tunnelDepth: 1, tunnel: (t4a, t4b), payload: body))
    f.append(Fixture("GRE over IPv6 with key", .ethernet,
                     PacketBuilder.build([eth0, outer6, .gre(key: 1), ip4, udpDgram, pl]),
                     layers: [.ethernet, .ipv6, .gre, .ipv4, .udp], src: a4, dst: b4, ports: udpPorts, proto: 17,
                     tunnelDepth: 1, tunnel: (t6a, t6b), payload: body))
    f.append(Fixture("GRE with an unknown protocol", .ethernet,
                     PacketBuilder.build([eth0, outer4, .gre(protocolOverride: 0x1234), pl]),
                     layers: [.ethernet, .ipv4, .gre], src: t4a, dst: t4b, proto: 47, tunnelDepth: 1,
                     tunnel: (t4a, t4b), notices: [.otherTransport], payload: body))
    f.append(Fixture("ERSPAN type II", .ethernet,
                     PacketBuilder.build([eth0, outer4, .erspanII(session: 5, vlan: 12, sequence: 1),
                                          .ethernet(src: MAC(0x0c0000000001), dst: MAC(0x0c0000000002)),
                                          .vlan(id: 77), ip4, tcpSeg, pl]),
                     layers: [.ethernet, .vlan, .ipv4, .gre, .erspan, .tcp], src: a4, dst: b4, ports: tcpPorts,
                     proto: 6, vlans: [77], tunnelDepth: 1, tunnel: (t4a, t4b), payload: body))
    f.append(Fixture("ERSPAN type I (no sequence number)", .ethernet,
                     PacketBuilder.build([eth0, outer4, .gre(protocolOverride: 0x88be), eth0, ip6, udpDgram, pl]),
                     layers: [.ethernet, .ipv4, .gre, .erspan, .ipv6, .udp], src: a6, dst: b6, ports: udpPorts,
                     proto: 17, tunnelDepth: 1, tunnel: (t4a, t4b), payload: body))
    f.append(Fixture("ERSPAN type III", .ethernet,
                     PacketBuilder.build([eth0, outer4, .gre(sequence: 1, protocolOverride: 0x22eb),
                                          .payload([0x20, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0]), eth0, ip4, udpDgram, pl]),
                     layers: [.ethernet, .ipv4, .gre, .erspan, .udp], src: a4, dst: b4, ports: udpPorts, proto: 17,
                     tunnelDepth: 1, tunnel: (t4a, t4b), payload: body))
    f.append(Fixture("ERSPAN type III with platform sub-header", .ethernet,
                     PacketBuilder.build([eth0, outer4, .gre(sequence: 1, protocolOverride: 0x22eb),
                                          .payload([0x20, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
                                          eth0, ip4, udpDgram, pl]),
                     layers: [.ethernet, .ipv4, .gre, .erspan, .udp], src: a4, dst: b4, ports: udpPorts, proto: 17,
                     tunnelDepth: 1, tunnel: (t4a, t4b), payload: body))
    f.append(Fixture("transparent Ethernet bridging over GRE", .ethernet,
                     PacketBuilder.build([eth0, outer4, .gre(key: 5), eth0, .vlan(id: 3), ip4, tcpSeg, pl]),
                     layers: [.ethernet, .vlan, .ipv4, .gre, .tcp], src: a4, dst: b4, ports: tcpPorts, proto: 6,
                     vlans: [3], tunnelDepth: 1, tunnel: (t4a, t4b), payload: body))
    f.append(Fixture("ARP bridged over GRE is not IP", .ethernet,
                     PacketBuilder.build([eth0, outer4, .gre(), eth0, .arp(senderIP: a4, targetIP: b4)]), .notIP,
                     layers: [.ethernet, .ipv4, .gre], src: t4a, dst: t4b, proto: 47, tunnelDepth: 1,
                     tunnel: (t4a, t4b), notices: [.nonIP]))
    f.append(Fixture("MPLS over GRE", .ethernet,
                     PacketBuilder.build([eth0, outer4, .gre(), .mpls(label: 1000), ip4, udpDgram, pl]),
                     layers: [.ethernet, .ipv4, .gre, .mpls, .udp], src: a4, dst: b4, ports: udpPorts, proto: 17,
                     mpls: 1, tunnelDepth: 1, tunnel: (t4a, t4b), payload: body))
    do {
        // PPTP enhanced GRE: version 1, key = payload length + call id, PPP inside.
        var pptp = PacketBuilder.buildWithOffsets([eth0, outer4, .gre(key: 0x0040_0001, sequence: 3,
                                                                      protocolOverride: 0x880b),
                                                   .payload([0xff, 0x03, 0x00, 0x21]), ip4, udpDgram, pl])
        pptp.bytes[pptp.offsets[2] + 1] |= 0x01
        f.append(Fixture("PPTP enhanced GRE with PPP", .ethernet, pptp.bytes,
                         layers: [.ethernet, .ipv4, .gre, .udp], src: a4, dst: b4, ports: udpPorts, proto: 17,
                         tunnelDepth: 1, tunnel: (t4a, t4b), payload: body))
        var pptpAck = PacketBuilder.buildWithOffsets([eth0, outer4, .gre(key: 0x0040_0001, sequence: 3,
                                                                         protocolOverride: 0x880b),
                                                      .payload([0, 0, 0, 9, 0x57]), ip6, udpDgram, pl])
        pptpAck.bytes[pptpAck.offsets[2] + 1] |= 0x81  // acknowledgment present, version 1
        f.append(Fixture("PPTP GRE with acknowledgment and compressed PPP IPv6", .ethernet, pptpAck.bytes,
                         layers: [.ethernet, .ipv4, .gre, .ipv6, .udp], src: a6, dst: b6, ports: udpPorts, proto: 17,
                         tunnelDepth: 1, tunnel: (t4a, t4b), payload: body))
    }
    f.append(Fixture("4in4", .ethernet, PacketBuilder.build([eth0, outer4, ip4, tcpSeg, pl]),
                     layers: [.ethernet, .ipv4, .ipInIP, .tcp], src: a4, dst: b4, ports: tcpPorts, proto: 6,
                     tunnelDepth: 1, tunnel: (t4a, t4b), payload: body))
    f.append(Fixture("6in4", .ethernet, PacketBuilder.build([eth0, outer4, ip6, udpDgram, pl]),
                     layers: [.ethernet, .ipv4, .ipv6, .ipInIP, .udp], src: a6, dst: b6, ports: udpPorts, proto: 17,
                     tunnelDepth: 1, tunnel: (t4a, t4b), payload: body))
    f.append(Fixture("4in6", .ethernet, PacketBuilder.build([eth0, outer6, ip4, udpDgram, pl]),
                     layers: [.ethernet, .ipv4, .ipv6, .ipInIP, .udp], src: a4, dst: b4, ports: udpPorts, proto: 17,
                     tunnelDepth: 1, tunnel: (t6a, t6b), payload: body))
    f.append(Fixture("6in6", .ethernet, PacketBuilder.build([eth0, outer6, ip6, tcpSeg, pl]),
                     layers: [.ethernet, .ipv6, .ipInIP, .tcp], src: a6, dst: b6, ports: tcpPorts, proto: 6,
                     tunnelDepth: 1, tunnel: (t6a, t6b), payload: body))
    do {
        var nest: [Layer] = [eth0]
        for k in 0..<8 { nest.append(.ipv4(src: IPAddress(ipv4: 0x0a00_0000 + UInt32(k)), dst: t4b)) }
        f.append(Fixture("IP-in-IP nested to the tunnel limit (8)", .ethernet,
                         PacketBuilder.build(nest + [ip4, udpDgram, pl]),
                         layers: [.ethernet, .ipv4, .ipInIP, .udp], src: a4, dst: b4, ports: udpPorts, proto: 17,
                         tunnelDepth: 8, tunnel: (ip("10.0.0.7"), t4b), payload: body))
    }

    // MARK: Transport

    f.append(Fixture("TCP SYN with MSS, window scale, SACK permitted, timestamps", .ethernet,
                     PacketBuilder.build([eth0, ip4, .tcp(src: 51000, dst: 80, seq: 0xffff_fff0, flags: TCPFlags.syn,
                                                           window: 64240,
                                                           options: TCPOption.mss(1460) + TCPOption.sackPermitted
                                                               + TCPOption.timestamps(value: 1, echo: 0) + TCPOption.nop
                                                               + TCPOption.windowScale(7))]),
                     layers: tcpLayers, src: a4, dst: b4, ports: (51000, 80), proto: 6, payload: [],
                     check: { p in
                         #expect(p.tcpFlags == TCPFlags.syn && p.tcpSequence == 0xffff_fff0 && p.tcpWindow == 64240)
                         #expect(p.tcpMSS == 1460 && p.tcpWindowScale == 7 && p.tcpSACKPermitted && p.tcpTimestamp)
                     }))
    f.append(Fixture("TCP with NOPs, SACK blocks and end-of-list", .ethernet,
                     PacketBuilder.build([eth0, ip6, .tcp(src: 443, dst: 40000, flags: TCPFlags.ack,
                                                           options: TCPOption.nop + TCPOption.nop
                                                               + TCPOption.sack([(1, 2), (5, 9)]) + TCPOption.endOfList
                                                               + [0xff, 0xff]),
                                          pl]),
                     layers: [.ethernet, .ipv6, .tcp], src: a6, dst: b6, ports: (443, 40000), proto: 6, payload: body,
                     check: { p in
                         #expect(p.tcpMSS == 0 && p.tcpWindowScale == 0xff && !p.tcpSACKPermitted && !p.tcpTimestamp)
                     }))
    f.append(Fixture("UDP", .ethernet, PacketBuilder.build([eth0, ip4, .udp(src: 68, dst: 67), pl]),
                     layers: [.ethernet, .ipv4, .udp], src: a4, dst: b4, ports: (68, 67), proto: 17, payload: body))
    f.append(Fixture("UDP with an empty payload", .ethernet, PacketBuilder.build([eth0, ip6, .udp(src: 1, dst: 2)]),
                     layers: [.ethernet, .ipv6, .udp], src: a6, dst: b6, ports: (1, 2), proto: 17, payload: []))

    // MARK: GTP-U

    let gtpuLayers: Layers = [.ethernet, .ipv4, .udp, .gtpu, .tcp]
    let flagCases: [(String, Layer)] = [
        ("no flags", .gtpu(teid: 0x1122_3344)),
        ("S", .gtpu(teid: 0x1122_3344, sequence: 7)),
        ("PN", .gtpu(teid: 0x1122_3344, npdu: 3)),
        ("E", .gtpu(teid: 0x1122_3344, extensions: [.pduSessionContainer(qfi: 9)])),
        ("S+PN+E", .gtpu(teid: 0x1122_3344, sequence: 0xffff, npdu: 0xff,
                         extensions: [.pduSessionContainer(qfi: 1, uplink: true)])),
    ]
    for (flags, gtpu) in flagCases {
        f.append(Fixture("GTP-U \(flags) with IPv4 TCP", .ethernet,
                         PacketBuilder.build([eth0, outer4, gtpuUDP, gtpu, ip4, tcpSeg, pl]),
                         layers: gtpuLayers, src: a4, dst: b4, ports: tcpPorts, proto: 6, tunnelDepth: 1,
                         tunnel: (t4a, t4b), teid: 0x1122_3344, payload: body))
    }
    do {
        // A capture with a small snap length keeps the headers of a long user-plane packet: the GTP-U length runs
        // past the captured bytes, yet the inner 5-tuple (and so the UE as device) is there.
        let long = PacketBuilder.build([eth0, outer4, gtpuUDP, .gtpu(teid: 0x77), ip4, tcpSeg,
                                        .payload([UInt8](repeating: 0x33, count: 1200))])
        f.append(Fixture("GTP-U cut by a 128-byte snap length", .ethernet, Array(long.prefix(128)),
                         layers: gtpuLayers, src: a4, dst: b4, ports: tcpPorts, proto: 6, tunnelDepth: 1,
                         tunnel: (t4a, t4b), teid: 0x77, notices: [.ipCapturedShort],
                         payload: [UInt8](repeating: 0x33, count: 128 - 14 - 20 - 8 - 8 - 20 - 20)))
    }
    let twoExtensions: [GTPUExtension] = [.pduSessionContainer(qfi: 5), .pdcpPDUNumber(77)]
    f.append(Fixture("GTP-U extension chain of 2 with inner IPv4", .ethernet,
                     PacketBuilder.build([eth0, outer4, gtpuUDP, .gtpu(teid: 42, extensions: twoExtensions), ip4,
                                          udpDgram, pl]),
                     layers: [.ethernet, .ipv4, .udp, .gtpu], src: a4, dst: b4, ports: udpPorts, proto: 17,
                     tunnelDepth: 1, tunnel: (t4a, t4b), teid: 42, payload: body))
    f.append(Fixture("GTP-U extension chain of 2 with inner IPv6", .ethernet,
                     PacketBuilder.build([eth0, outer4, gtpuUDP,
                                          .gtpu(teid: 43, sequence: 1,
                                                extensions: [.pduSessionContainer(qfi: 5),
                                                             GTPUExtension(type: 0x81, content: [1, 2, 3, 4, 5, 6])]),
                                          ip6, tcpSeg, pl]),
                     layers: [.ethernet, .ipv4, .ipv6, .udp, .gtpu, .tcp], src: a6, dst: b6, ports: tcpPorts,
                     proto: 6, tunnelDepth: 1, tunnel: (t4a, t4b), teid: 43, payload: body))
    f.append(Fixture("GTP-U over IPv6 in a VLAN", .ethernet,
                     PacketBuilder.build([eth0, .vlan(id: 2152), outer6, .udp(src: 40001, dst: 2152),
                                          .gtpu(teid: 0xffff_ffff), ip4, udpDgram, pl]),
                     layers: [.ethernet, .vlan, .ipv4, .ipv6, .udp, .gtpu], src: a4, dst: b4, ports: udpPorts,
                     proto: 17, vlans: [2152], tunnelDepth: 1, tunnel: (t6a, t6b), teid: 0xffff_ffff, payload: body))
    f.append(Fixture("GTP-U echo request is signalling", .ethernet,
                     PacketBuilder.build([eth0, outer4, gtpuUDP, .gtpu(teid: 0, messageType: 1, sequence: 1)]),
                     layers: [.ethernet, .ipv4, .udp, .gtpu], src: t4a, dst: t4b, ports: (2152, 2152), proto: 17,
                     teid: 0, notices: [.gtpuSignalling], payload: [0x32, 1, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0]))
    f.append(Fixture("GTP-U end marker is signalling", .ethernet,
                     PacketBuilder.build([eth0, outer4, gtpuUDP, .gtpu(teid: 9, messageType: 254)]),
                     layers: [.ethernet, .ipv4, .udp, .gtpu], src: t4a, dst: t4b, ports: (2152, 2152), proto: 17,
                     teid: 9, notices: [.gtpuSignalling], payload: [0x30, 254, 0, 0, 0, 0, 0, 9]))
    do {
        let layers: [Layer] = [eth0, outer4, gtpuUDP, .gtpu(teid: 6), ip4, .icmp(type: 8, body: [0, 1, 0, 1])]
        f.append(Fixture("GTP-U carrying ICMP has no ports", .ethernet, PacketBuilder.build(layers),
                         layers: [.ethernet, .ipv4, .udp, .gtpu, .icmp], src: a4, dst: b4, proto: 1, tunnelDepth: 1,
                         tunnel: (t4a, t4b), teid: 6, payload: tail(layers, from: 5)))
    }
    f.append(Fixture("GTP-U carrying GRE carrying IPv4", .ethernet,
                     PacketBuilder.build([eth0, outer4, gtpuUDP, .gtpu(teid: 6), .ipv4(src: t4b, dst: a4), .gre(),
                                          ip4, tcpSeg, pl]),
                     layers: [.ethernet, .ipv4, .udp, .gtpu, .gre, .tcp], src: a4, dst: b4, ports: tcpPorts, proto: 6,
                     tunnelDepth: 2, tunnel: (t4b, a4), teid: 6, payload: body))
    do {
        let notGTP: [UInt8] = Array("this is not GTP-U at all".utf8)
        f.append(Fixture("UDP 2152 with a non-GTP payload stays UDP", .ethernet,
                         PacketBuilder.build([eth0, ip4, .udp(src: 40000, dst: 2152), .payload(notGTP)]),
                         layers: [.ethernet, .ipv4, .udp], src: a4, dst: b4, ports: (40000, 2152), proto: 17,
                         notices: [.gtpuInvalidOnPort2152], payload: notGTP))
        let gtpv2: [UInt8] = [0x48, 0x20, 0, 8, 0, 0, 0, 1, 0, 0, 1, 0]
        f.append(Fixture("UDP 2152 with GTPv2 stays UDP", .ethernet,
                         PacketBuilder.build([eth0, ip4, .udp(src: 2152, dst: 1234), .payload(gtpv2)]),
                         layers: [.ethernet, .ipv4, .udp], src: a4, dst: b4, ports: (2152, 1234), proto: 17,
                         notices: [.gtpuInvalidOnPort2152], payload: gtpv2))
        let short: [UInt8] = [0x30, 0xff, 0, 0, 0, 0]
        f.append(Fixture("UDP 2152 shorter than a GTP-U header stays UDP", .ethernet,
                         PacketBuilder.build([eth0, ip4, gtpuUDP, .payload(short)]),
                         layers: [.ethernet, .ipv4, .udp], src: a4, dst: b4, ports: (2152, 2152), proto: 17,
                         notices: [.gtpuInvalidOnPort2152], payload: short))
        var lying = PacketBuilder.buildWithOffsets([eth0, ip4, gtpuUDP, .gtpu(teid: 1), ip4, udpDgram, pl])
        lying.bytes.poke(UInt16(500), at: lying.offsets[3] + 2)
        f.append(Fixture("UDP 2152 with a GTP-U length past the datagram stays UDP", .ethernet, lying.bytes,
                         layers: [.ethernet, .ipv4, .udp], src: a4, dst: b4, ports: (2152, 2152), proto: 17,
                         notices: [.gtpuInvalidOnPort2152], payload: Array(lying.bytes[lying.offsets[3]...])))
    }

    // MARK: Link types

    let udp4 = PacketBuilder.build([ip4, udpDgram, pl])
    let tcp6 = PacketBuilder.build([ip6, tcpSeg, pl])
    f.append(Fixture("raw IPv4", .raw, udp4, layers: [.ipv4, .udp], src: a4, dst: b4, ports: udpPorts, proto: 17,
                     payload: body))
    f.append(Fixture("raw IPv6", .raw, tcp6, layers: [.ipv6, .tcp], src: a6, dst: b6, ports: tcpPorts, proto: 6,
                     payload: body))
    f.append(Fixture("link type IPv4", .ipv4, udp4, layers: [.ipv4, .udp], src: a4, dst: b4, ports: udpPorts,
                     proto: 17, payload: body))
    f.append(Fixture("link type IPv6", .ipv6, tcp6, layers: [.ipv6, .tcp], src: a6, dst: b6, ports: tcpPorts,
                     proto: 6, payload: body))
    f.append(Fixture("Linux SLL IPv4", .linuxSLL, PacketBuilder.sllHeader(protocol: 0x0800) + udp4,
                     layers: [.sll, .ipv4, .udp], src: a4, dst: b4, ports: udpPorts, proto: 17, payload: body))
    f.append(Fixture("Linux SLL VLAN IPv6", .linuxSLL,
                     PacketBuilder.sllHeader(protocol: 0x8100, packetType: 4)
                         + PacketBuilder.build([.vlan(id: 31), ip6, tcpSeg, pl]),
                     layers: [.sll, .vlan, .ipv6, .tcp], src: a6, dst: b6, ports: tcpPorts, proto: 6, vlans: [31],
                     payload: body))
    f.append(Fixture("Linux SLL2 IPv6", .linuxSLL2, PacketBuilder.sll2Header(protocol: 0x86dd) + tcp6,
                     layers: [.sll, .ipv6, .tcp], src: a6, dst: b6, ports: tcpPorts, proto: 6, payload: body))
    f.append(Fixture("Linux SLL2 GTP-U", .linuxSLL2,
                     PacketBuilder.sll2Header(protocol: 0x0800)
                         + PacketBuilder.build([outer4, gtpuUDP, .gtpu(teid: 77, sequence: 2), ip4, udpDgram, pl]),
                     layers: [.sll, .ipv4, .udp, .gtpu], src: a4, dst: b4, ports: udpPorts, proto: 17, tunnelDepth: 1,
                     tunnel: (t4a, t4b), teid: 77, payload: body))
    f.append(Fixture("BSD loopback (null) IPv4, little-endian family", .null,
                     PacketBuilder.loopbackHeader(family: 2) + udp4,
                     layers: [.ipv4, .udp], src: a4, dst: b4, ports: udpPorts, proto: 17, payload: body))
    for family: UInt32 in [10, 24, 28, 30] {
        f.append(Fixture("BSD loopback (null) IPv6, big-endian family \(family)", .null,
                         PacketBuilder.loopbackHeader(family: family, bigEndian: true) + tcp6,
                         layers: [.ipv6, .tcp], src: a6, dst: b6, ports: tcpPorts, proto: 6, payload: body))
    }
    f.append(Fixture("OpenBSD loopback (loop) IPv6", .loop, PacketBuilder.loopbackHeader(family: 24, bigEndian: true) + tcp6,
                     layers: [.ipv6, .tcp], src: a6, dst: b6, ports: tcpPorts, proto: 6, payload: body))
    f.append(Fixture("OpenBSD loopback (loop) IPv4", .loop, PacketBuilder.loopbackHeader(family: 2, bigEndian: true) + udp4,
                     layers: [.ipv4, .udp], src: a4, dst: b4, ports: udpPorts, proto: 17, payload: body))
    f.append(Fixture("loopback with an unknown family is not IP", .null,
                     PacketBuilder.loopbackHeader(family: 7) + udp4, .notIP, notices: [.nonIP]))
    f.append(Fixture("Linux SLL2 ARP is not IP", .linuxSLL2,
                     PacketBuilder.sll2Header(protocol: 0x0806) + PacketBuilder.build([.arp(senderIP: a4, targetIP: b4)]),
                     .notIP, layers: [.sll], notices: [.nonIP]))
    return f
}
