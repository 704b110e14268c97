import Decode
import PacketCraft
import Testing

/// Parses a test address (the literals below are all valid).
func ip(_ text: String) -> IPAddress {
    guard let a = IPAddress(text) else { fatalError("bad test address \(text)") }
    return a
}

// Innermost endpoints and tunnel endpoints used by the tables.
let a4 = ip("192.0.2.1")
let b4 = ip("198.51.100.2")
let a6 = ip("2001:db8::1")
let b6 = ip("2001:db8:0:1::2")
let t4a = ip("10.0.0.1")
let t4b = ip("10.0.0.2")
let t6a = ip("fd00::1")
let t6b = ip("fd00::2")

/// Transport payload carried by most fixtures.
let body: [UInt8] = Array("statetap payload bytes".utf8)

// Common layers.
let eth0: Layer = .ethernet()
let ip4: Layer = .ipv4(src: a4, dst: b4)
let ip6: Layer = .ipv6(src: a6, dst: b6)
let outer4: Layer = .ipv4(src: t4a, dst: t4b)
let outer6: Layer = .ipv6(src: t6a, dst: t6b)
let tcpSeg: Layer = .tcp(src: 40000, dst: 443, seq: 1000, ack: 2000, flags: TCPFlags.pshAck)
let tcpPorts: (UInt16, UInt16) = (40000, 443)
let udpDgram: Layer = .udp(src: 5000, dst: 53)
let udpPorts: (UInt16, UInt16) = (5000, 53)
let gtpuUDP: Layer = .udp(src: 2152, dst: 2152)
let pl: Layer = .payload(body)

/// What decoding a fixture must return.
enum Expect: Sendable, Equatable, CustomStringConvertible {
    case complete
    case notIP
    case fragment(offset: Int, more: Bool, id: UInt32, proto: UInt8)
    case malformed(DecodeError)

    /// `packet` holds the fragment details when the outcome is `.fragment`.
    init(_ outcome: DecodeOutcome, packet: DecodedPacket? = nil) {
        switch outcome {
        case .complete: self = .complete
        case .notIP: self = .notIP
        case .fragment:
            let f = packet?.fragment ?? .none
            self = .fragment(offset: f.fragmentOffset, more: f.moreFragments, id: f.identification,
                             proto: f.nextProtocol)
        case .malformed(let e): self = .malformed(e)
        }
    }

    var description: String {
        switch self {
        case .complete: "complete"
        case .notIP: "notIP"
        case let .fragment(o, m, i, p): "fragment(offset: \(o), more: \(m), id: \(i), proto: \(p))"
        case .malformed(let e): "malformed(\(e.name))"
        }
    }
}

/// One row of a decode table. In strict rows every field is checked (nil means the field's empty value); in
/// lenient rows (malformed packets) only the fields given are.
struct Fixture: Sendable, CustomTestStringConvertible {
    var name: String
    var link: LinkType
    var bytes: [UInt8]
    var expect: Expect
    var strict: Bool
    var layers: Layers?
    var src: IPAddress?
    var dst: IPAddress?
    var ports: (UInt16, UInt16)?
    var proto: UInt8?
    var vlans: [UInt16]?
    var mpls: Int?
    var tunnelDepth: Int?
    var tunnel: (IPAddress, IPAddress)?
    var teid: UInt32?
    var notices: [DecodeNotice]?
    var payload: [UInt8]?
    var fragmentData: [UInt8]?
    var check: (@Sendable (DecodedPacket) -> Void)?

    var testDescription: String { name }

    init(_ name: String, _ link: LinkType = .ethernet, _ bytes: [UInt8], _ expect: Expect = .complete,
         strict: Bool = true, layers: Layers? = nil, src: IPAddress? = nil, dst: IPAddress? = nil,
         ports: (UInt16, UInt16)? = nil, proto: UInt8? = nil, vlans: [UInt16]? = nil, mpls: Int? = nil,
         tunnelDepth: Int? = nil, tunnel: (IPAddress, IPAddress)? = nil, teid: UInt32? = nil,
         notices: [DecodeNotice]? = nil, payload: [UInt8]? = nil, fragmentData: [UInt8]? = nil,
         check: (@Sendable (DecodedPacket) -> Void)? = nil)
    {
        self.name = name; self.link = link; self.bytes = bytes; self.expect = expect; self.strict = strict
        self.layers = layers; self.src = src; self.dst = dst; self.ports = ports; self.proto = proto
        self.vlans = vlans; self.mpls = mpls; self.tunnelDepth = tunnelDepth; self.tunnel = tunnel
        self.teid = teid; self.notices = notices; self.payload = payload; self.fragmentData = fragmentData
        self.check = check
    }
}

/// Readable names of a layer set, in `Layers.named` order.
func names(_ l: Layers) -> [String] {
    var out = Layers.named.filter { l.contains($0.1) }.map(\.0)
    let known = Layers.named.reduce(Layers()) { $0.union($1.1) }
    if !l.subtracting(known).isEmpty { out.append("unknown(\(l.subtracting(known).rawValue))") }
    return out
}

/// Readable names of a packet's notices.
func noticeNames(_ p: DecodedPacket) -> Set<String> {
    Set(DecodeNotice.allCases.filter { p.has($0) }.map(\.name))
}

/// Decodes `bytes` of `link` into a fresh packet.
func decode(_ bytes: [UInt8], _ link: LinkType = .ethernet) -> (DecodeOutcome, DecodedPacket) {
    var p = DecodedPacket()
    let outcome = bytes.withUnsafeBytes { PacketDecoder.decode($0, linkType: link, into: &p) }
    return (outcome, p)
}

/// The stored VLAN ids of `p`, outermost first.
func storedVLANs(_ p: DecodedPacket) -> [UInt16] {
    (0..<min(Int(p.vlanCount), DecodedPacket.maxStoredVLANs)).map { p.vlanID($0) }
}

/// Decodes a fixture and checks everything it expects.
func verify(_ f: Fixture) {
    let (outcome, p) = decode(f.bytes, f.link)
    #expect(Expect(outcome, packet: p) == f.expect, "outcome")
    #expect(p.wireLength == f.bytes.count)
    if f.strict || f.layers != nil { #expect(names(p.layers) == names(f.layers ?? [])) }
    if f.strict || f.src != nil { #expect(p.source == f.src ?? .none, "source") }
    if f.strict || f.dst != nil { #expect(p.destination == f.dst ?? .none, "destination") }
    if f.strict || f.ports != nil {
        #expect(p.sourcePort == (f.ports?.0 ?? 0), "source port")
        #expect(p.destinationPort == (f.ports?.1 ?? 0), "destination port")
    }
    if f.strict || f.proto != nil { #expect(p.ipProtocol == f.proto ?? 0, "ip protocol") }
    if f.strict || f.vlans != nil {
        let vlans = f.vlans ?? []
        #expect(Int(p.vlanCount) == vlans.count, "vlan count")
        #expect(storedVLANs(p) == Array(vlans.prefix(DecodedPacket.maxStoredVLANs)), "vlan ids")
    }
    if f.strict || f.mpls != nil { #expect(Int(p.mplsCount) == f.mpls ?? 0, "mpls count") }
    if f.strict || f.tunnelDepth != nil { #expect(Int(p.tunnelDepth) == f.tunnelDepth ?? 0, "tunnel depth") }
    if let (s, d) = f.tunnel {
        #expect(p.tunnelSource == s, "tunnel source")
        #expect(p.tunnelDestination == d, "tunnel destination")
    }
    if f.strict || f.teid != nil {
        #expect(p.hasTEID == (f.teid != nil), "has TEID")
        if let teid = f.teid { #expect(p.teid == teid, "TEID") }
    }
    if f.strict || f.notices != nil {
        #expect(noticeNames(p) == Set((f.notices ?? []).map(\.name)), "notices")
    }
    #expect(p.payloadOffset >= 0 && p.payloadLength >= 0 && p.payloadOffset + p.payloadLength <= f.bytes.count)
    if let payload = f.payload {
        if p.payloadOffset >= 0, p.payloadLength >= 0, p.payloadOffset + p.payloadLength <= f.bytes.count {
            #expect(Array(f.bytes[p.payloadOffset..<p.payloadOffset + p.payloadLength]) == payload, "payload")
        }
    }
    if outcome == .fragment {
        let info = p.fragment
        #expect(info.source == p.source && info.destination == p.destination)
        #expect(info.isIPv6 == p.source.isIPv6)
        #expect(info.dataOffset >= 0 && info.dataLength >= 0 && info.dataOffset + info.dataLength <= f.bytes.count)
        if let data = f.fragmentData, info.dataOffset + info.dataLength <= f.bytes.count {
            #expect(Array(f.bytes[info.dataOffset..<info.dataOffset + info.dataLength]) == data, "fragment data")
        }
    }
    f.check?(p)
}

/// A seeded SplitMix64 generator (written here, independent of PacketCraft's), for reproducible random cases.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// Every link type the decoder accepts.
let allLinkTypes: [LinkType] = [.null, .ethernet, .raw, .loop, .linuxSLL, .ipv4, .ipv6, .linuxSLL2]
