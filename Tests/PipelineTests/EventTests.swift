import Capture
import Decode
import Foundation
import PacketCraft
import StatetapTestSupport
import Testing
@testable import Extract
@testable import Pipeline

final class CollectedEvents: @unchecked Sendable {
    private var events: [StateEvent] = []
    private let lock = NSLock()
    func add(_ e: StateEvent) { lock.lock(); events.append(e); lock.unlock() }
    var all: [StateEvent] { lock.lock(); defer { lock.unlock() }; return events }
}

@Suite("QUIC server_name events through the pipeline")
struct QUICEventTests {
    let ue = IPAddress("10.45.0.7")!, server = IPAddress("198.51.100.9")!
    let ue6 = IPAddress("2001:db8::7")!, server6 = IPAddress("2001:db8:1::9")!

    @Test("the RFC Initial in plain UDP, in VLAN + GTP-U and over IPv6 gives one event each, with its context",
          arguments: initialVectors)
    func events(_ v: InitialVector) throws {
        let initial = v.protectedPacket
        let frames: [[UInt8]] = [
            PacketBuilder.build([.ethernet(), .ipv4(src: ue, dst: server), .udp(src: 50000, dst: 443), .payload(initial)]),
            // Retransmitted: the same connection must not give a second event.
            PacketBuilder.build([.ethernet(), .ipv4(src: ue, dst: server), .udp(src: 50000, dst: 443), .payload(initial)]),
            PacketBuilder.build([.ethernet(), .vlan(id: 100), .ipv4(src: IPAddress("192.0.2.1")!, dst: IPAddress("192.0.2.2")!),
                                 .udp(src: 2152, dst: 2152), .gtpu(teid: 0x1234), .ipv4(src: ue, dst: server),
                                 .udp(src: 50001, dst: 443), .payload(initial)]),
            PacketBuilder.build([.ethernet(), .ipv6(src: ue6, dst: server6), .udp(src: 50002, dst: 443), .payload(initial)]),
            // A server's reply direction (cannot be decrypted with client keys) and a small UDP 443 datagram.
            PacketBuilder.build([.ethernet(), .ipv4(src: server, dst: ue), .udp(src: 443, dst: 50000),
                                 .payload([0xc0] + [UInt8](repeating: 0x55, count: 1250))]),
            PacketBuilder.build([.ethernet(), .ipv4(src: ue, dst: server), .udp(src: 50003, dst: 443), .payload([0xc0, 1, 2])]),
        ]
        let file = TempFile(".pcap")
        let w = try PcapWriter(path: file.path, linkType: .ethernet)
        for (i, f) in frames.enumerated() { try w.write(packet: f, timestampNanoseconds: 1_700_000_000_000_000_000 + UInt64(i)) }
        try w.close()
        let seen = CollectedEvents()
        let s = try ReplayPipeline(configuration: PipelineConfiguration()).run(files: [file.path], onEvent: { seen.add($0) })
        let events = seen.all.sorted { $0.clientPort < $1.clientPort }
        #expect(events.count == 3)
        #expect(s.serverNameEvents == 3)
        for e in events {
            #expect(e.kind == .serverName && e.transport == "quic")
            #expect(e.serverName == "example.com")
            #expect(e.alpn == ["alpn"])
            #expect(e.quicVersion == v.version)
            #expect(e.dcid == dcid)
            #expect(e.serverPort == 443)
        }
        #expect(events.map(\.clientPort) == [50000, 50001, 50002])
        #expect(events[0].client == ue && events[0].device == ue && events[0].vlans.isEmpty && events[0].teid == nil)
        #expect(events[1].vlans == [100] && events[1].teid == 0x1234 && events[1].device == ue)
        #expect(events[2].client == ue6)
        let line = events[2].jsonLine()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["client"] as? String == "[2001:db8::7]:50002")
        #expect(object["sni"] as? String == "example.com")
        #expect(object["quic_version"] as? String == (v.version == 1 ? "0x00000001" : "0x6b3343cf"))
        #expect(object["dcid"] as? String == "8394c8f03e515708")
        #expect(object["vlan"] == nil && object["teid"] == nil, "unknown fields are omitted")
        #expect(s.counters.quic.clientHellos == 3)
        #expect(s.counters.quic.skipped == 1, "the retransmitted Initial of a known connection is not decrypted again")
    }
}

@Suite("TLS server_name events through the pipeline")
struct TLSEventTests {
    @Test("a ClientHello split over segments sent out of order and retransmitted gives one event")
    func splitClientHello() throws {
        let client = IPAddress("10.45.0.8")!, server = IPAddress("203.0.113.5")!
        // A ClientHello with SNI and ALPN, in one TLS record (built by hand: type 1, body with two extensions).
        let name = Array("shop.example".utf8)
        var ext: [UInt8] = [0, 0, 0, UInt8(name.count + 5), 0, UInt8(name.count + 3), 0, 0, UInt8(name.count)] + name
        ext += [0, 16, 0, 5, 0, 3, 2] + Array("h2".utf8)
        var body: [UInt8] = [3, 3] + [UInt8](repeating: 1, count: 32) + [0, 0, 2, 0x13, 0x01, 1, 0]
        body += [UInt8(ext.count >> 8), UInt8(ext.count & 0xff)] + ext
        let hello: [UInt8] = [1, 0, UInt8(body.count >> 8), UInt8(body.count & 0xff)] + body
        let record: [UInt8] = [22, 3, 1, UInt8(hello.count >> 8), UInt8(hello.count & 0xff)] + hello
        let isn: UInt32 = 5000
        func seg(_ from: Int, _ to: Int, flags: UInt8 = TCPFlags.ack | TCPFlags.psh) -> [UInt8] {
            PacketBuilder.build([.ethernet(), .vlan(id: 7), .ipv4(src: client, dst: server),
                                 .tcp(src: 40001, dst: 443, seq: isn + 1 + UInt32(from), flags: flags),
                                 .payload(Array(record[from..<to]))])
        }
        let third = record.count / 3
        let frames: [[UInt8]] = [
            PacketBuilder.build([.ethernet(), .vlan(id: 7), .ipv4(src: client, dst: server),
                                 .tcp(src: 40001, dst: 443, seq: isn, flags: TCPFlags.syn)]),
            PacketBuilder.build([.ethernet(), .vlan(id: 7), .ipv4(src: server, dst: client),
                                 .tcp(src: 443, dst: 40001, seq: 9000, ack: isn + 1, flags: TCPFlags.synAck)]),
            seg(2 * third, record.count), seg(0, third), seg(0, third), seg(third, 2 * third), seg(third, 2 * third),
        ]
        let file = TempFile(".pcap")
        let w = try PcapWriter(path: file.path, linkType: .ethernet)
        for (i, f) in frames.enumerated() { try w.write(packet: f, timestampNanoseconds: 1_700_000_000_000_000_000 + UInt64(i)) }
        try w.close()
        let seen = CollectedEvents()
        let s = try ReplayPipeline(configuration: PipelineConfiguration()).run(files: [file.path], onEvent: { seen.add($0) })
        let events = seen.all
        #expect(events.count == 1)
        let e = try #require(events.first)
        #expect(e.transport == "tls" && e.serverName == "shop.example" && e.alpn == ["h2"])
        #expect(e.client == client && e.clientPort == 40001 && e.server == server && e.serverPort == 443)
        #expect(e.vlans == [7] && e.device == client)
        #expect(s.counters.tls.clientHellos == 1)
    }
}

@Suite("HTTP web_link events through the pipeline")
struct HTTPEventTests {
    /// A GET and its response on one connection; the request's segments arrive last-first.
    func capture() throws -> TempFile {
        let client = IPAddress("10.45.0.9")!, server = IPAddress("203.0.113.80")!
        let request = Array("GET /img/logo.png HTTP/1.1\r\nHost: cdn.example\r\nUser-Agent: t\r\n\r\n".utf8)
        let response = Array(("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nCache-Control: max-age=600\r\nETag: \"e1\"\r\n"
            + "Via: 1.1 edge-a\r\nX-Cache: HIT\r\nServer: nginx\r\nContent-Type: image/png\r\nAge: 12\r\n\r\nPNG!").utf8)
        func tcp(_ fromClient: Bool, seq: UInt32, ack: UInt32 = 0, flags: UInt8, _ data: ArraySlice<UInt8> = []) -> [UInt8] {
            PacketBuilder.build([.ethernet(), fromClient ? .ipv4(src: client, dst: server) : .ipv4(src: server, dst: client),
                                 fromClient ? .tcp(src: 40100, dst: 80, seq: seq, ack: ack, flags: flags)
                                            : .tcp(src: 80, dst: 40100, seq: seq, ack: ack, flags: flags),
                                 .payload(Array(data))])
        }
        let c0: UInt32 = 100, s0: UInt32 = 7000
        let half = request.count / 2
        let frames = [
            tcp(true, seq: c0, flags: TCPFlags.syn), tcp(false, seq: s0, ack: c0 + 1, flags: TCPFlags.synAck),
            tcp(true, seq: c0 + 1 + UInt32(half), flags: TCPFlags.pshAck, request[half...]),
            tcp(true, seq: c0 + 1, flags: TCPFlags.pshAck, request[..<half]),
            tcp(false, seq: s0 + 1, flags: TCPFlags.pshAck, response[...]),
        ]
        let file = TempFile(".pcap")
        let w = try PcapWriter(path: file.path, linkType: .ethernet)
        for (i, f) in frames.enumerated() { try w.write(packet: f, timestampNanoseconds: 1_700_000_000_000_000_000 + UInt64(i)) }
        try w.close()
        return file
    }

    @Test("one web_link with the response's fields and the storage decision")
    func webLink() throws {
        let file = try capture()
        let seen = CollectedEvents()
        let s = try ReplayPipeline(configuration: PipelineConfiguration()).run(files: [file.path], onEvent: { seen.add($0) })
        let e = try #require(seen.all.first)
        #expect(seen.all.count == 1 && s.webLinkEvents == 1)
        #expect(e.kind == .webLink && e.method == "GET" && e.url == "http://cdn.example/img/logo.png")
        #expect(e.status == 200 && e.cacheable == true)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(e.jsonLine().utf8)) as? [String: Any])
        #expect(json["cache_control"] as? String == "max-age=600" && json["etag"] as? String == "\"e1\"")
        #expect(json["via"] as? String == "1.1 edge-a" && json["x_cache"] as? String == "HIT")
        #expect(json["server_software"] as? String == "nginx" && json["content_length"] as? Int == 4 && json["age"] as? Int == 12)
        #expect(json["client"] as? String == "10.45.0.9:40100" && json["server"] as? String == "203.0.113.80:80")
        #expect(json["proxy"] as? String == "edge-a")
    }

    @Test("past the TCP memcap a connection gives up its hole: counted, and the request behind it is not invented")
    func memcap() throws {
        let file = try capture()
        var c = PipelineConfiguration()
        c.tcpReassemblyMemcapBytes = 8
        let seen = CollectedEvents()
        let s = try ReplayPipeline(configuration: c).run(files: [file.path], onEvent: { seen.add($0) })
        #expect(s.counters.http.memcapSkips >= 1)
        #expect(s.counters.http.gaps >= 1)
        #expect(seen.all.allSatisfy { $0.url != "http://cdn.example/img/logo.png" || $0.status == nil },
                "a request whose first half was skipped cannot be read")
    }
}
