import Decode
import PacketCraft
import Testing

/// Decodes every fragment, reassembles the data by offset (first copy wins) and resumes the decoder with the
/// context of the fragment that completed the datagram.
func reassembleAndResume(_ frames: [[UInt8]]) -> (DecodeOutcome, DecodedPacket, [UInt8])? {
    var data: [UInt8?] = []
    var total: Int?
    var last = DecodedPacket()
    var proto: UInt8 = 0
    for frame in frames {
        var p = DecodedPacket()
        let outcome = frame.withUnsafeBytes { PacketDecoder.decode($0, linkType: .ethernet, into: &p) }
        guard outcome == .fragment else { return nil }
        let info = p.fragment
        let end = info.fragmentOffset + info.dataLength
        if data.count < end { data += [UInt8?](repeating: nil, count: end - data.count) }
        for k in 0..<info.dataLength where data[info.fragmentOffset + k] == nil {
            data[info.fragmentOffset + k] = frame[info.dataOffset + k]
        }
        if !info.moreFragments { total = end }
        proto = info.nextProtocol
        last = p
    }
    guard let total, data.count == total, data.allSatisfy({ $0 != nil }) else { return nil }
    let datagram = data.map { $0! }
    let outcome = datagram.withUnsafeBytes { PacketDecoder.resume(datagram: $0, ipProtocol: proto, into: &last) }
    return (outcome, last, datagram)
}

@Suite("Resume after reassembly")
struct ResumeTests {
    static let payload: [UInt8] = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 7) }

    @Test("IPv4 UDP fragments in a VLAN, in order, reversed, duplicated and overlapping")
    func ipv4UDP() throws {
        let datagram: [Layer] = [.udp(src: 9000, dst: 9001), .payload(Self.payload)]
        let frames = PacketBuilder.ipv4Fragments(datagram, src: a4, dst: b4, id: 0x4242, fragmentSize: 96,
                                                 outer: [eth0, .vlan(id: 12)])
        let overlapping = PacketBuilder.ipv4Fragments(datagram, src: a4, dst: b4, id: 0x4242, fragmentSize: 96,
                                                      overlap: 32, outer: [eth0, .vlan(id: 12)])
        #expect(frames.count == 4 && overlapping.count == 5)
        for order in [frames, Array(frames.reversed()), frames + [frames[1]], overlapping, Array(overlapping.reversed())] {
            let (outcome, p, data) = try #require(reassembleAndResume(order))
            #expect(Expect(outcome) == .complete)
            #expect(data == PacketBuilder.datagram(datagram, src: a4, dst: b4))
            #expect(p.layers.isSuperset(of: [.ethernet, .vlan, .ipv4, .fragment, .reassembled, .udp]))
            #expect(p.source == a4 && p.destination == b4 && p.ipProtocol == 17)
            #expect(p.sourcePort == 9000 && p.destinationPort == 9001)
            #expect(storedVLANs(p) == [12])
            #expect(p.wireLength == data.count)
            #expect(Array(data[p.payloadOffset..<p.payloadOffset + p.payloadLength]) == Self.payload)
        }
    }

    @Test("IPv6 TCP fragments, reversed")
    func ipv6TCP() throws {
        let datagram: [Layer] = [.tcp(src: 443, dst: 50000, seq: 5, flags: TCPFlags.pshAck,
                                      options: TCPOption.timestamps(value: 1, echo: 2)),
                                 .payload(Self.payload)]
        let frames = PacketBuilder.ipv6Fragments(datagram, src: a6, dst: b6, id: 0x1234_5678, fragmentSize: 128)
        let (outcome, p, data) = try #require(reassembleAndResume(frames.reversed()))
        #expect(Expect(outcome) == .complete)
        #expect(p.layers.isSuperset(of: [.ipv6, .fragment, .reassembled, .tcp]))
        #expect(p.sourcePort == 443 && p.destinationPort == 50000 && p.tcpFlags == TCPFlags.pshAck)
        #expect(p.tcpSequence == 5 && p.tcpTimestamp)
        #expect(Array(data[p.payloadOffset..<p.payloadOffset + p.payloadLength]) == Self.payload)
    }

    @Test("fragmented outer UDP carrying GTP-U resumes into the tunnel")
    func fragmentedGTPU() throws {
        let inner: [Layer] = [.gtpu(teid: 0xfeed, sequence: 1), ip4, tcpSeg, .payload(Self.payload)]
        let frames = PacketBuilder.ipv4Fragments([gtpuUDP] + inner, src: t4a, dst: t4b, id: 9, fragmentSize: 200)
        let (outcome, p, _) = try #require(reassembleAndResume(frames))
        #expect(Expect(outcome) == .complete)
        #expect(p.hasTEID && p.teid == 0xfeed && p.tunnelDepth == 1)
        #expect(p.tunnelSource == t4a && p.tunnelDestination == t4b)
        #expect(p.source == a4 && p.destination == b4 && p.sourcePort == 40000 && p.destinationPort == 443)
        #expect(p.layers.isSuperset(of: [.gtpu, .reassembled, .tcp, .udp]))
    }

    @Test("inner fragments inside a GTP-U tunnel keep the tunnel context")
    func innerFragments() throws {
        let data = PacketBuilder.datagram([udpDgram, .payload(Self.payload)], src: a4, dst: b4)
        let frames = PacketBuilder.fragmentPieces(data, fragmentSize: 160).map {
            PacketBuilder.ipv4FragmentPacket($0.data, offset: $0.offset, more: $0.more, ipProtocol: 17, src: a4,
                                             dst: b4, id: 77,
                                             outer: [eth0, outer4, gtpuUDP, .gtpu(teid: 31)])
        }
        let (outcome, p, _) = try #require(reassembleAndResume(frames))
        #expect(Expect(outcome) == .complete)
        #expect(p.teid == 31 && p.tunnelDepth == 1 && p.tunnelSource == t4a)
        #expect(p.source == a4 && p.sourcePort == udpPorts.0 && p.destinationPort == udpPorts.1)
    }

    @Test("resume reports a broken reassembled datagram")
    func brokenDatagram() {
        var p = DecodedPacket()
        let outcome = [UInt8](repeating: 0, count: 5).withUnsafeBytes {
            PacketDecoder.resume(datagram: $0, ipProtocol: 17, into: &p)
        }
        #expect(Expect(outcome) == .malformed(.udpTruncated))
        #expect(p.layers.contains(.reassembled) && p.wireLength == 5)
    }
}
