import Capture
import Decode
import Flows
import Foundation
import PacketCraft
import StatetapTestSupport
import Testing
@testable import Extract
@testable import Pipeline

/// One TCP connection between a client and a server, written frame by frame (any order, any gaps) to a capture.
private struct Conversation {
    let client: IPAddress, server: IPAddress
    let clientPort: UInt16, serverPort: UInt16
    let clientISN: UInt32 = 1000, serverISN: UInt32 = 50_000
    var frames: [(UInt64, [UInt8])] = []
    var clock: UInt64 = 1_700_000_000_000_000_000

    init(client: String = "10.45.0.20", server: String = "203.0.113.20", clientPort: UInt16 = 41000,
         serverPort: UInt16 = 80)
    {
        self.client = IPAddress(client)!
        self.server = IPAddress(server)!
        self.clientPort = clientPort
        self.serverPort = serverPort
    }

    /// Appends a segment; `offset` counts stream bytes from the first (the SYN's sequence number + 1).
    mutating func send(fromClient: Bool, offset: Int = 0, flags: UInt8 = TCPFlags.pshAck, _ data: [UInt8] = [],
                       after nanoseconds: UInt64 = 1_000_000)
    {
        clock += nanoseconds
        let seq = (fromClient ? clientISN : serverISN) &+ 1 &+ UInt32(offset)
        let frame = PacketBuilder.build([
            .ethernet(),
            fromClient ? .ipv4(src: client, dst: server) : .ipv4(src: server, dst: client),
            fromClient ? .tcp(src: clientPort, dst: serverPort, seq: seq, flags: flags)
                : .tcp(src: serverPort, dst: clientPort, seq: seq, flags: flags),
        ] + (data.isEmpty ? [] : [.payload(data)]))
        frames.append((clock, frame))
    }

    mutating func handshake() {
        clock += 1_000_000
        frames.append((clock, PacketBuilder.build([.ethernet(), .ipv4(src: client, dst: server),
                                                   .tcp(src: clientPort, dst: serverPort, seq: clientISN, flags: TCPFlags.syn)])))
        clock += 1_000_000
        frames.append((clock, PacketBuilder.build([.ethernet(), .ipv4(src: server, dst: client),
                                                   .tcp(src: serverPort, dst: clientPort, seq: serverISN,
                                                        ack: clientISN + 1, flags: TCPFlags.synAck)])))
    }
}

private func replay(_ frames: [(UInt64, [UInt8])], configure: (inout PipelineConfiguration) -> Void = { _ in })
    throws -> (PipelineSummary, [StateEvent])
{
    let file = TempFile(".pcap")
    let w = try PcapWriter(path: file.path, linkType: .ethernet)
    for (ts, f) in frames { try w.write(packet: f, timestampNanoseconds: ts) }
    try w.close()
    var c = PipelineConfiguration()
    configure(&c)
    let seen = CollectedEvents()
    let s = try ReplayPipeline(configuration: c).run(files: [file.path], onEvent: { seen.add($0) })
    return (s, seen.all)
}

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite("TCP stream lifecycle under extraction")
struct StreamLifecycleTests {
    let requests = ["/a.css", "/b.png", "/c.js"].map { bytes("GET \($0) HTTP/1.1\r\nHost: edge.example\r\n\r\n") }

    func response(_ type: String, length: Int) -> [UInt8] {
        bytes("HTTP/1.1 200 OK\r\nContent-Type: \(type)\r\nContent-Length: \(length)\r\n\r\n")
            + [UInt8](repeating: 0x2e, count: length)
    }

    @Test("a hole inside a response body: the responses after it are still paired with their own requests")
    func holeInBody() throws {
        var t = Conversation()
        t.handshake()
        t.send(fromClient: true, requests[0] + requests[1] + requests[2])
        let r = [response("text/css", length: 3000), response("image/png", length: 10), response("text/javascript", length: 20)]
        let all = r[0] + r[1] + r[2]
        t.send(fromClient: false, offset: 0, Array(all[0..<1000]))
        // Bytes 1000..<2500 of the first body never appear.
        t.send(fromClient: false, offset: 2500, Array(all[2500...]))
        let (s, events) = try replay(t.frames)
        let byURL = Dictionary(events.map { ($0.url ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        #expect(events.count == 3)
        #expect(byURL["http://edge.example/a.css"]?.responseHeaders["content-type"] == "text/css")
        #expect(byURL["http://edge.example/b.png"]?.responseHeaders["content-type"] == "image/png")
        #expect(byURL["http://edge.example/c.js"]?.responseHeaders["content-type"] == "text/javascript")
        #expect(s.counters.http.gaps == 1 && s.counters.http.unpairedAfterLoss == 0)
    }

    @Test("a hole that may hold whole responses: the requests waiting go out unanswered, never mispaired")
    func holeAcrossResponses() throws {
        var t = Conversation()
        t.handshake()
        t.send(fromClient: true, requests[0] + requests[1] + requests[2])
        let r = [response("text/css", length: 100), response("image/png", length: 10), response("text/javascript", length: 20)]
        // The first response's end and all of the second are lost; the third is seen.
        t.send(fromClient: false, offset: 0, Array(r[0][0..<50]))
        t.send(fromClient: false, offset: r[0].count + r[1].count, r[2])
        let (s, events) = try replay(t.frames)
        #expect(events.count == 3)
        #expect(events.allSatisfy { $0.status == nil }, "no response is attached to a request it may not answer")
        #expect(s.counters.http.unpairedAfterLoss == 3)
    }

    @Test("a reset ends the connection's parsing at once: its unanswered request is reported then, once")
    func resetEndsEarly() throws {
        var t = Conversation()
        t.handshake()
        t.send(fromClient: true, requests[0])
        t.send(fromClient: false, flags: TCPFlags.rst | TCPFlags.ack)
        let resetTime = t.clock
        // The same request retransmitted a second later on the reset connection: not a second event.
        t.send(fromClient: true, requests[0], after: 1_000_000_000)
        let (_, events) = try replay(t.frames)
        #expect(events.count == 1)
        #expect(events.first?.timestampNanoseconds == resetTime)
        #expect(events.first?.url == "http://edge.example/a.css" && events.first?.status == nil)
    }

    @Test("STARTTLS: a ClientHello later in a plain-text stream is found")
    func starttls() throws {
        var t = Conversation(serverPort: 25)
        t.handshake()
        var c = 0, s = 0
        func client(_ d: [UInt8]) { t.send(fromClient: true, offset: c, d); c += d.count }
        func server(_ d: [UInt8]) { t.send(fromClient: false, offset: s, d); s += d.count }
        server(bytes("220 mail.example ESMTP\r\n"))
        client(bytes("EHLO device.example\r\n"))
        server(bytes("250-mail.example\r\n250 STARTTLS\r\n"))
        client(bytes("STARTTLS\r\n"))
        server(bytes("220 2.0.0 Ready to start TLS\r\n"))
        client(TLSRecords.clientHello(serverName: "mail.example", alpn: ["smtp"]))
        let (summary, events) = try replay(t.frames)
        #expect(events.count == 1)
        #expect(events.first?.transport == "tls" && events.first?.serverName == "mail.example")
        #expect(events.first?.alpn == ["smtp"] && events.first?.serverPort == 25)
        #expect(summary.counters.tls.restarted == 1)
    }

    @Test("a flood of half-open connections costs no parser state; flows stay within the table")
    func halfOpenFlood() throws {
        var frames: [(UInt64, [UInt8])] = []
        let server = IPAddress("203.0.113.30")!
        var clock: UInt64 = 1_700_000_000_000_000_000
        for i in 0..<20_000 {
            clock += 1_000
            let client = IPAddress("10.46.\(i >> 8 & 0xff).\(i & 0xff)")!
            for port: UInt16 in [80, 443] {
                frames.append((clock, PacketBuilder.build([.ethernet(), .ipv4(src: client, dst: server),
                                                           .tcp(src: 30000, dst: port, seq: UInt32(i), flags: TCPFlags.syn)])))
            }
        }
        // A real exchange after the flood is still extracted.
        var t = Conversation()
        t.clock = clock
        t.handshake()
        t.send(fromClient: true, requests[1])
        t.send(fromClient: false, response("image/png", length: 10))
        frames += t.frames
        let (s, events) = try replay(frames) { $0.maxFlowsPerWorker = 4096 }
        #expect(s.counters.flows.peakActive <= 4096)
        #expect(s.counters.flows.evictedLRU >= 40_000 - 4096)
        #expect(s.counters.http.connections == 1, "only the connection that carried data was followed")
        #expect(events.count == 1 && events.first?.status == 200)
    }

    @Test("out-of-order floods on many connections stay within --reassembly-memcap")
    func memcapFlood() throws {
        var frames: [(UInt64, [UInt8])] = []
        let memcap = 256 * 1024
        for n in 0..<64 {
            var t = Conversation(clientPort: UInt16(42000 + n))
            t.clock += UInt64(n) * 1_000_000_000
            t.handshake()
            t.send(fromClient: true, requests[0])
            // 300 segments of 100 bytes, each after a hole: 30 kB held per connection if nothing were bounded.
            for k in 0..<300 { t.send(fromClient: false, offset: 200 * k + 100, [UInt8](repeating: 0x41, count: 100)) }
            frames += t.frames
        }
        let (s, _) = try replay(frames) { $0.tcpReassemblyMemcapBytes = memcap }
        #expect(s.counters.streamBytesPeak <= memcap + 100 + StreamReassembler.segmentOverhead,
                "past the cap by at most the segment that crossed it")
        #expect(s.counters.http.memcapSkips >= 1)
    }
}
