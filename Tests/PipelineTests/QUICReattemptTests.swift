import Capture
import Decode
import Extract
import PacketCraft
import StatetapTestSupport
import Testing
@testable import Pipeline

/// One QUIC client's datagrams on one flow, as a tap sees them.
enum QUICStep {
    /// A client Initial with a ClientHello for `sni`.
    case initial(version: UInt32, dcid: [UInt8], scid: [UInt8], token: [UInt8] = [], sni: String = "video.example")
    /// The server's Retry: the client's SCID as its DCID, a new server CID and a token.
    case retry(dcid: [UInt8], scid: [UInt8], token: [UInt8])
    /// The server's Version Negotiation listing versions.
    case versionNegotiation(dcid: [UInt8], scid: [UInt8], versions: [UInt32])
}

struct ReattemptCase: CustomStringConvertible, Sendable {
    var name: String
    var datagrams: [QUICStep]
    /// The events' SNI and DCID, in order, and how many ClientHellos were taken as another attempt.
    var events: [(sni: String, dcid: [UInt8])]
    var reattempts: UInt64
    var description: String { name }
}


private let d1: [UInt8] = [0xd1, 1, 1, 1, 1, 1, 1, 1], d2: [UInt8] = [0xd2, 2, 2, 2, 2, 2, 2, 2, 2, 2]
private let d3: [UInt8] = [0xd3, 3, 3, 3, 3, 3, 3, 3], d4: [UInt8] = [0xd4, 4, 4, 4, 4, 4, 4, 4]
private let s1: [UInt8] = [0x51, 1, 1, 1], s2: [UInt8] = [0x52, 2, 2, 2]
private let token: [UInt8] = Array(repeating: 0x7a, count: 40)
private let v1: UInt32 = 1, v2: UInt32 = 0x6b33_43cf

private let cases: [ReattemptCase] = [
    ReattemptCase(name: "Retry: the second Initial (new DCID, token) is the same connection",
                  datagrams: [.initial(version: v1, dcid: d1, scid: s1),
                              .retry(dcid: s1, scid: d2, token: token),
                              .initial(version: v1, dcid: d2, scid: s1, token: token)],
                  events: [("video.example", d1)], reattempts: 1),
    ReattemptCase(name: "Retry in QUIC v2",
                  datagrams: [.initial(version: v2, dcid: d1, scid: s1),
                              .retry(dcid: s1, scid: d2, token: token),
                              .initial(version: v2, dcid: d2, scid: s1, token: token)],
                  events: [("video.example", d1)], reattempts: 1),
    ReattemptCase(name: "Retry not captured: the two Initials alone are still one connection",
                  datagrams: [.initial(version: v1, dcid: d1, scid: s1),
                              .initial(version: v1, dcid: d2, scid: s1, token: token)],
                  events: [("video.example", d1)], reattempts: 1),
    ReattemptCase(name: "version negotiation: v2 refused, the v1 attempt with new connection IDs is the same connection",
                  datagrams: [.initial(version: v2, dcid: d1, scid: s1),
                              .versionNegotiation(dcid: s1, scid: d1, versions: [v1]),
                              .initial(version: v1, dcid: d3, scid: s2)],
                  events: [("video.example", d1)], reattempts: 1),
    ReattemptCase(name: "Retry then the first Initial retransmitted late: still one event",
                  datagrams: [.initial(version: v1, dcid: d1, scid: s1),
                              .retry(dcid: s1, scid: d2, token: token),
                              .initial(version: v1, dcid: d2, scid: s1, token: token),
                              .initial(version: v1, dcid: d1, scid: s1)],
                  events: [("video.example", d1)], reattempts: 1),
    ReattemptCase(name: "two connections multiplexed on one socket (other SCIDs) are two events",
                  datagrams: [.initial(version: v1, dcid: d1, scid: s1),
                              .initial(version: v1, dcid: d4, scid: s2)],
                  events: [("video.example", d1), ("video.example", d4)], reattempts: 0),
    ReattemptCase(name: "the same SCID reused for another server name is another connection",
                  datagrams: [.initial(version: v1, dcid: d1, scid: s1),
                              .initial(version: v1, dcid: d3, scid: s1, sni: "maps.example")],
                  events: [("video.example", d1), ("maps.example", d3)], reattempts: 0),
]

@Suite("QUIC: one connection, one server_name event, whatever Retry or version negotiation happens")
struct QUICReattemptTests {
    static let client = IPAddress("10.45.0.21")!, server = IPAddress("198.51.100.44")!

    static func frame(_ d: QUICStep) -> [UInt8] {
        let toServer: [Layer] = [.ethernet(), .ipv4(src: client, dst: server), .udp(src: 51515, dst: 443)]
        let toClient: [Layer] = [.ethernet(), .ipv4(src: server, dst: client), .udp(src: 443, dst: 51515)]
        switch d {
        case .initial(let version, let dcid, let scid, let token, let sni):
            let hello = Array(TLSRecords.clientHello(serverName: sni, alpn: ["h3"]).dropFirst(5))
            let crypto: [UInt8] = [0x06, 0x00, 0x40 | UInt8(hello.count >> 8), UInt8(hello.count & 0xff)] + hello
            let packet = QUICProtect.initial(version: version, dcid: dcid, scid: scid, token: token, packetNumber: 0,
                                             payload: crypto)
            return PacketBuilder.build(toServer + [.payload(packet)])
        case .retry(let dcid, let scid, let token):
            return PacketBuilder.build(toClient + [.payload(QUICProtect.retry(version: v1, dcid: dcid, scid: scid, token: token))])
        case .versionNegotiation(let dcid, let scid, let versions):
            var p: [UInt8] = [0x80, 0, 0, 0, 0, UInt8(dcid.count)] + dcid + [UInt8(scid.count)] + scid
            for v in versions { p += withUnsafeBytes(of: v.bigEndian, Array.init) }
            return PacketBuilder.build(toClient + [.payload(p)])
        }
    }

    @Test(arguments: cases)
    func reattempt(_ c: ReattemptCase) throws {
        let file = TempFile(".pcap")
        let w = try PcapWriter(path: file.path, linkType: .ethernet)
        for (i, d) in c.datagrams.enumerated() {
            try w.write(packet: Self.frame(d), timestampNanoseconds: 1_700_000_000_000_000_000 + UInt64(i) * 1_000_000)
        }
        try w.close()
        let seen = CollectedEvents()
        let s = try ReplayPipeline(configuration: PipelineConfiguration()).run(files: [file.path], onEvent: { seen.add($0) })
        let events = seen.all.filter { $0.kind == .serverName }
        #expect(events.map { $0.serverName ?? "-" } == c.events.map(\.sni))
        #expect(events.map { $0.dcid } == c.events.map(\.dcid))
        #expect(events.allSatisfy { $0.transport == "quic" && $0.alpn == ["h3"] && $0.clientPort == 51515 })
        #expect(s.counters.quic.reattempts == c.reattempts)
        #expect(s.counters.quic.clientHellos == UInt64(c.events.count) + c.reattempts)
    }
}
