import Decode
import PacketCraft
import Testing

@Suite("Decode tables")
struct DecodeTableTests {
    @Test("valid packets", arguments: validFixtures)
    func valid(_ fixture: Fixture) {
        verify(fixture)
    }

    @Test("malformed packets", arguments: malformedFixtures)
    func malformed(_ fixture: Fixture) {
        verify(fixture)
    }

    @Test("every reason the decoder can return has a malformed fixture")
    func malformedCoverage() {
        var covered = Set<DecodeError>()
        for f in malformedFixtures {
            if case .malformed(let reason) = f.expect { covered.insert(reason) }
        }
        let producible = Set(DecodeError.allCases).subtracting(reasonsNotFromDecoder)
        #expect(producible.subtracting(covered).map(\.name).sorted() == [])
    }

    @Test("fixture names are unique")
    func uniqueNames() {
        let all = (validFixtures + malformedFixtures).map(\.name)
        #expect(Set(all).count == all.count)
    }

    @Test("decoding resets the packet it reuses")
    func reuse() {
        var p = DecodedPacket()
        let gtpu = PacketBuilder.build([eth0, .vlan(id: 4), outer4, gtpuUDP, .gtpu(teid: 3), ip4, tcpSeg, pl])
        let arp = PacketBuilder.build([eth0, .arp(senderIP: a4, targetIP: b4)])
        _ = gtpu.withUnsafeBytes { PacketDecoder.decode($0, linkType: .ethernet, into: &p) }
        #expect(p.hasTEID && p.vlanCount == 1)
        let outcome = arp.withUnsafeBytes { PacketDecoder.decode($0, linkType: .ethernet, into: &p) }
        #expect(Expect(outcome) == .notIP)
        #expect(names(p.layers) == ["ethernet"] && !p.hasTEID && p.vlanCount == 0 && p.tunnelDepth == 0)
        #expect(p.source == .none && p.sourcePort == 0 && p.tcpFlags == 0 && p.wireLength == arp.count)
    }

    @Test("decoding a frame inside a larger buffer reads only that frame")
    func slice() {
        let frame = PacketBuilder.build([eth0, ip4, udpDgram, pl])
        let buffer = [UInt8](repeating: 0xee, count: 7) + frame + [UInt8](repeating: 0xee, count: 9)
        var p = DecodedPacket()
        let outcome = buffer.withUnsafeBytes {
            PacketDecoder.decode(UnsafeRawBufferPointer(rebasing: $0[7..<7 + frame.count]), linkType: .ethernet,
                                 into: &p)
        }
        #expect(Expect(outcome) == .complete)
        #expect(p.payloadLength == body.count && p.payloadOffset == frame.count - body.count)
    }
}
