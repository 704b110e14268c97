import Decode
import Testing

/// The fields of a decoded packet that are meaningful, by the validity rules of `DecodedPacket`.
func meaningful(_ p: DecodedPacket, _ outcome: DecodeOutcome) -> [String] {
    var out = ["\(outcome)", "layers \(p.layers.rawValue)", "vlans \(p.vlanCount) \(storedVLANs(p))",
               "mpls \(p.mplsCount)", "depth \(p.tunnelDepth)", "src \(p.source)", "dst \(p.destination)",
               "proto \(p.ipProtocol) ttl \(p.ipTTL)", "ports \(p.sourcePort) \(p.destinationPort)",
               "payload \(p.payloadOffset) \(p.payloadLength)", "notices \(p.notices)", "wire \(p.wireLength)"]
    if p.tunnelDepth > 0 { out.append("tunnel \(p.tunnelSource) \(p.tunnelDestination)") }
    if p.hasTEID { out.append("teid \(p.teid)") }
    if p.layers.contains(.tcp) {
        out.append("tcp \(p.tcpFlags) \(p.tcpSequence) \(p.tcpAcknowledgment) \(p.tcpWindow) \(p.tcpMSS) "
            + "\(p.tcpWindowScale) \(p.tcpSACKPermitted) \(p.tcpTimestamp)")
    }
    if outcome == .fragment {
        let f = p.fragment
        out.append("fragment \(f.identification) \(f.fragmentOffset) \(f.moreFragments) \(f.dataOffset) \(f.dataLength)")
    }
    return out
}

@Suite("Reusing one DecodedPacket")
struct ReuseTests {
    @Test("decoding every fixture in turn into one reused value gives what a fresh value gives")
    func reuseMatchesFresh() {
        let all = validFixtures + malformedFixtures
        var reused = DecodedPacket()
        // Twice round, and backwards, so every fixture follows a different predecessor.
        for f in all + all.reversed() {
            let r = f.bytes.withUnsafeBytes { PacketDecoder.decode($0, linkType: f.link, into: &reused) }
            var fresh = DecodedPacket()
            let o = f.bytes.withUnsafeBytes { PacketDecoder.decode($0, linkType: f.link, into: &fresh) }
            #expect(meaningful(reused, r) == meaningful(fresh, o), "\(f.name)")
        }
    }
}
