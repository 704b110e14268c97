import Decode
import PacketCraft
import Testing

/// Decodes `bytes` as `link` and checks what must hold for any input; returns a failure description or nil.
/// (Array storage is exactly `bytes.count` long, so debug builds trap on any out-of-bounds read.)
func invariantViolation(_ bytes: [UInt8], _ link: LinkType) -> String? {
    var p = DecodedPacket()
    let outcome = bytes.withUnsafeBytes { PacketDecoder.decode($0, linkType: link, into: &p) }
    let n = bytes.count
    if p.wireLength != n { return "wireLength \(p.wireLength) != \(n)" }
    if p.payloadOffset < 0 || p.payloadLength < 0 || p.payloadOffset + p.payloadLength > n {
        return "payload \(p.payloadOffset)+\(p.payloadLength) outside \(n)"
    }
    if p.tunnelDepth > PacketDecoder.maxTunnelDepth { return "tunnel depth \(p.tunnelDepth)" }
    if Int(p.mplsCount) * 4 > n { return "mpls count \(p.mplsCount)" }
    if Int(p.vlanCount) * 4 > n { return "vlan count \(p.vlanCount)" }
    if p.notices >> DecodeNotice.allCases.count != 0 { return "unknown notice bits \(p.notices)" }
    if !p.hasTEID && p.teid != 0 { return "TEID without hasTEID" }
    if p.layers.contains(.qinq) && p.vlanCount < 2 { return "qinq with \(p.vlanCount) tags" }
    if (p.sourcePort != 0 || p.destinationPort != 0) && !p.layers.contains(.tcp) && !p.layers.contains(.udp) {
        return "ports without TCP/UDP"
    }
    switch outcome {
    case .fragment:
        let f = p.fragment
        if f.dataOffset < 0 || f.dataLength < 0 || f.dataOffset + f.dataLength > n {
            return "fragment data \(f.dataOffset)+\(f.dataLength) outside \(n)"
        }
        if f.fragmentOffset % 8 != 0 || f.fragmentOffset > 0xffff { return "fragment offset \(f.fragmentOffset)" }
        if f.fragmentOffset == 0 && !f.moreFragments { return "fragment that is a whole datagram" }
        if !p.layers.contains(.fragment) { return "fragment without the fragment layer" }
        if f.isIPv6 != f.source.isIPv6 || f.source.isIPv6 != f.destination.isIPv6 { return "fragment families" }
        if !f.isIPv6 && f.identification > 0xffff { return "IPv4 identification \(f.identification)" }
    case .complete, .notIP:
        break
    case .malformed(let reason):
        if reasonsNotFromDecoder.contains(reason) { return "decoder returned \(reason.name)" }
    }
    if case .notIP = outcome, !p.has(.nonIP) { return "notIP without the nonIP notice" }
    return nil
}

@Suite("Decoder robustness")
struct PropertyTests {
    @Test("every truncation of every fixture, for every link type")
    func truncations() {
        var failures: [String] = []
        var cases = 0
        for f in validFixtures + malformedFixtures {
            for n in 0...f.bytes.count {
                let prefix = Array(f.bytes.prefix(n))
                for link in allLinkTypes {
                    cases += 1
                    if let v = invariantViolation(prefix, link), failures.count < 20 {
                        failures.append("\(f.name) prefix \(n) as \(link): \(v)")
                    }
                }
            }
        }
        #expect(failures == [])
        #expect(cases > 10_000)
    }

    @Test("random bytes and mutated fixtures (seeded)")
    func random() {
        var rng = SeededGenerator(seed: 0x5747_4554_4150)  // reproducible
        let fixtures = validFixtures + malformedFixtures
        var failures: [String] = []
        var outcomes = [String: Int]()
        for k in 0..<200_000 {
            var bytes: [UInt8]
            let link: LinkType
            if k % 2 == 0 {
                // Pure noise, biased to small lengths where headers end.
                let n = Int(rng.next() % 128)
                bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                link = allLinkTypes[Int(rng.next() % UInt64(allLinkTypes.count))]
            } else {
                // A valid packet with a few bytes changed: reaches the deep layers.
                let f = fixtures[Int(rng.next() % UInt64(fixtures.count))]
                bytes = f.bytes
                link = rng.next() % 8 == 0 ? allLinkTypes[Int(rng.next() % UInt64(allLinkTypes.count))] : f.link
                if !bytes.isEmpty {
                    for _ in 0..<(1 + Int(rng.next() % 4)) {
                        let at = Int(rng.next() % UInt64(bytes.count))
                        bytes[at] = rng.next() % 2 == 0 ? UInt8(truncatingIfNeeded: rng.next()) : bytes[at] ^ 0xff
                    }
                    if rng.next() % 4 == 0 { bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count + 1)))) }
                }
            }
            if let v = invariantViolation(bytes, link), failures.count < 20 {
                failures.append("case \(k) as \(link) \(bytes): \(v)")
            }
            if k % 2 == 1 {
                var p = DecodedPacket()
                let outcome = bytes.withUnsafeBytes { PacketDecoder.decode($0, linkType: link, into: &p) }
                outcomes[Expect(outcome).kind, default: 0] += 1
            }
        }
        #expect(failures == [])
        // The mutations reach every kind of outcome.
        #expect(Set(outcomes.keys) == ["complete", "notIP", "fragment", "malformed"])
    }
}

extension Expect {
    /// The outcome without its details.
    var kind: String {
        switch self {
        case .complete: "complete"
        case .notIP: "notIP"
        case .fragment: "fragment"
        case .malformed: "malformed"
        }
    }
}
