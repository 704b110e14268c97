import Capture
import Decode
import Foundation
import PacketCraft
import Testing
@testable import Pipeline

/// One TCP connection's messages in the order the endpoints sent them, and the order a tap captured them in.
private struct Conversation {
    enum Step { case client(String), server(String), clientSYN(String) }
    var steps: [Step]
    /// Capture order as indices into the frames (SYN, SYN-ACK, then one frame per step); nil: as sent.
    var captureOrder: [Int]? = nil
    var serverPort: UInt16 = 80
    var ipv6 = false
    /// The capture's snap length (whole frames when nil): each frame is written cut to it, with its length.
    var snapLength: Int? = nil

    func frames() -> [[UInt8]] {
        let client = ipv6 ? IPAddress("2001:db8::9")! : IPAddress("10.45.0.9")!
        let server = ipv6 ? IPAddress("2001:db8::80")! : IPAddress("203.0.113.80")!
        func ip(_ fromClient: Bool) -> Layer {
            let (s, d) = fromClient ? (client, server) : (server, client)
            return ipv6 ? .ipv6(src: s, dst: d) : .ipv4(src: s, dst: d)
        }
        func tcp(_ fromClient: Bool, seq: UInt32, ack: UInt32, flags: UInt8, _ data: [UInt8] = []) -> [UInt8] {
            PacketBuilder.build([.ethernet(), ip(fromClient),
                                 fromClient ? .tcp(src: 40100, dst: serverPort, seq: seq, ack: ack, flags: flags)
                                            : .tcp(src: serverPort, dst: 40100, seq: seq, ack: ack, flags: flags),
                                 .payload(data)])
        }
        var c: UInt32 = 100, s: UInt32 = 7000
        var out: [[UInt8]] = []
        if case .clientSYN(let data) = steps.first {
            // TCP Fast Open: the request rides in the SYN.
            out.append(tcp(true, seq: c, ack: 0, flags: TCPFlags.syn, Array(data.utf8)))
            c += 1 + UInt32(data.utf8.count)
        } else {
            out.append(tcp(true, seq: c, ack: 0, flags: TCPFlags.syn))
            c += 1
        }
        out.append(tcp(false, seq: s, ack: c, flags: TCPFlags.synAck))
        s += 1
        for step in steps {
            switch step {
            case .clientSYN: continue
            case .client(let d):
                out.append(tcp(true, seq: c, ack: s, flags: TCPFlags.pshAck, Array(d.utf8))); c += UInt32(d.utf8.count)
            case .server(let d):
                out.append(tcp(false, seq: s, ack: c, flags: TCPFlags.pshAck, Array(d.utf8))); s += UInt32(d.utf8.count)
            }
        }
        return captureOrder.map { $0.map { out[$0] } } ?? out
    }
}

/// What a case must yield: per web_link (in order), its URL, host, host_from and status.
private struct Expected: Equatable, CustomStringConvertible {
    var url: String?
    var host: String?
    var hostFrom: String? = nil
    var status: Int? = nil
    var truncated = false
    var description: String {
        "url \(url ?? "-") host \(host ?? "-") host_from \(hostFrom ?? "-") status \(status.map(String.init) ?? "-")"
            + (truncated ? " truncated" : "")
    }
}

private struct Case: CustomTestStringConvertible, Sendable {
    var name: String
    var conversation: @Sendable () -> Conversation
    var expected: [Expected]
    var interim = 0
    var unpairedResponseFirst = 0
    var truncatedMessages = 0
    var testDescription: String { name }
}

private let ok200 = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
private let ok200b = "HTTP/1.1 204 No Content\r\n\r\n"
/// Ethernet, IPv4 and TCP headers of the frames built here: a snap length of `headers + n` keeps n payload bytes.
private let headers = 14 + 20 + 20
private let segmentRequest = "GET /videos/segment-0001.ts HTTP/1.1\r\nHost: cdn.example\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"
private let segmentResponse = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nCache-Control: max-age=600\r\nContent-Type: video/mp2t\r\n\r\n12345"

private let cases: [Case] = [
    Case(name: "absolute-form target with an upper-case scheme is one URL, not the target appended to the host",
         conversation: { Conversation(steps: [.client("GET HTTP://example.org/ HTTP/1.1\r\nHost: example.org\r\n\r\n"), .server(ok200)]) },
         expected: [Expected(url: "http://example.org/", host: "example.org", status: 200)]),
    Case(name: "absolute-form target in mixed case with a port and a path",
         conversation: { Conversation(steps: [.client("GET Http://example.org:8080/a/b?c=1 HTTP/1.1\r\nHost: example.org:8080\r\n\r\n"), .server(ok200)]) },
         expected: [Expected(url: "http://example.org:8080/a/b?c=1", host: "example.org:8080", status: 200)]),
    Case(name: "absolute-form https target in upper case",
         conversation: { Conversation(steps: [.client("GET HTTPS://secure.example/x HTTP/1.1\r\nHost: secure.example\r\n\r\n"), .server(ok200)]) },
         expected: [Expected(url: "https://secure.example/x", host: "secure.example", status: 200)]),
    Case(name: "an origin-form target that merely contains a URL stays origin-form",
         conversation: { Conversation(steps: [.client("GET /go?to=HTTP://other.example/ HTTP/1.1\r\nHost: h.example\r\n\r\n"), .server(ok200)]) },
         expected: [Expected(url: "http://h.example/go?to=HTTP://other.example/", host: "h.example", status: 200)]),
    Case(name: "HTTP/1.0 without Host: the URL from the server's address, and the event says so",
         conversation: { Conversation(steps: [.client("GET /index.html HTTP/1.0\r\nUser-Agent: old\r\n\r\n"), .server(ok200)]) },
         expected: [Expected(url: "http://203.0.113.80/index.html", host: nil, hostFrom: "address", status: 200)]),
    Case(name: "without Host on another port: the port is in the URL",
         conversation: { Conversation(steps: [.client("GET / HTTP/1.0\r\n\r\n"), .server(ok200)], serverPort: 8080) },
         expected: [Expected(url: "http://203.0.113.80:8080/", host: nil, hostFrom: "address", status: 200)]),
    Case(name: "without Host over IPv6: the address in brackets",
         conversation: { Conversation(steps: [.client("GET /a HTTP/1.0\r\n\r\n"), .server(ok200)], ipv6: true) },
         expected: [Expected(url: "http://[2001:db8::80]/a", host: nil, hostFrom: "address", status: 200)]),
    Case(name: "a request without Host in a TCP Fast Open SYN",
         conversation: { Conversation(steps: [.clientSYN("GET /tfo HTTP/1.0\r\n\r\n"), .server(ok200)]) },
         expected: [Expected(url: "http://203.0.113.80/tfo", host: nil, hostFrom: "address", status: 200)]),
    Case(name: "100 Continue, then the final response: the final one is paired, the interim counted",
         conversation: { Conversation(steps: [.client("POST /up HTTP/1.1\r\nHost: u.example\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"),
                                              .server("HTTP/1.1 100 Continue\r\n\r\n"), .client("hi"), .server(ok200)]) },
         expected: [Expected(url: "http://u.example/up", host: "u.example", status: 200)], interim: 1),
    Case(name: "a 100 captured before its request: the final response still pairs with the request",
         conversation: { Conversation(steps: [.client("POST /up HTTP/1.1\r\nHost: u.example\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"),
                                              .server("HTTP/1.1 100 Continue\r\n\r\n"), .client("hi"), .server(ok200)],
                                      captureOrder: [0, 1, 3, 2, 4, 5]) },
         expected: [Expected(url: "http://u.example/up", host: "u.example", status: 200)], interim: 1),
    Case(name: "a final response captured before its request is never paired with the next request",
         conversation: { Conversation(steps: [.client("GET /one HTTP/1.1\r\nHost: a.example\r\n\r\n"), .server(ok200),
                                              .client("GET /two HTTP/1.1\r\nHost: a.example\r\n\r\n"), .server(ok200b)],
                                      captureOrder: [0, 1, 3, 2, 4, 5]) },
         expected: [Expected(url: "http://a.example/one", host: "a.example", status: nil),
                    Expected(url: "http://a.example/two", host: "a.example", status: 204)],
         unpairedResponseFirst: 1),
    Case(name: "snap length cuts request and response headers: the whole lines before the cut are the messages, marked",
         conversation: { Conversation(steps: [.client(segmentRequest), .server(segmentResponse),
                                              .client(segmentRequest.replacingOccurrences(of: "0001", with: "0002")),
                                              .server(segmentResponse)],
                                      snapLength: headers + 70) },  // the request line, Host, part of User-Agent
         expected: [Expected(url: "http://cdn.example/videos/segment-0001.ts", host: "cdn.example", status: 200, truncated: true),
                    Expected(url: "http://cdn.example/videos/segment-0002.ts", host: "cdn.example", status: 200, truncated: true)],
         truncatedMessages: 4),
    Case(name: "snap length cuts the request line itself: no request is guessed (its response's status line is whole)",
         conversation: { Conversation(steps: [.client(segmentRequest), .server(segmentResponse)], snapLength: headers + 20) },
         expected: [], truncatedMessages: 1),
    Case(name: "snap length cuts only bodies: the headers are whole, the bodies skipped exactly, nothing marked",
         conversation: { Conversation(steps: [.client("POST /up HTTP/1.1\r\nHost: u.example\r\nContent-Length: 400\r\n\r\n"
                                                      + String(repeating: "x", count: 400)),
                                              .server(ok200),
                                              .client("GET /next HTTP/1.1\r\nHost: u.example\r\n\r\n"), .server(ok200b)],
                                      snapLength: headers + 100) },
         expected: [Expected(url: "http://u.example/up", host: "u.example", status: 200),
                    Expected(url: "http://u.example/next", host: "u.example", status: 204)]),
]

@Suite("HTTP/1.x cases found replaying public captures against tshark")
struct HTTPCaptureCasesTests {
    @Test("each case yields the web_links tshark reads, and counts what it set aside", arguments: cases)
    fileprivate func httpCase(_ c: Case) throws {
        let file = TempFile(".pcap")
        let w = try PcapWriter(path: file.path, linkType: .ethernet)
        let conversation = c.conversation()
        for (i, f) in conversation.frames().enumerated() {
            let kept = conversation.snapLength.map { Array(f.prefix($0)) } ?? f
            try w.write(packet: kept, timestampNanoseconds: 1_700_000_000_000_000_000 + UInt64(i) * 1000, originalLength: f.count)
        }
        try w.close()
        let seen = CollectedEvents()
        let s = try ReplayPipeline(configuration: PipelineConfiguration()).run(files: [file.path], onEvent: { seen.add($0) })
        let got = seen.all.filter { $0.kind == .webLink }.sorted { $0.timestampNanoseconds < $1.timestampNanoseconds }
            .map { Expected(url: $0.url, host: $0.host, hostFrom: $0.hostFrom, status: $0.status, truncated: $0.truncated) }
        #expect(got == c.expected)
        #expect(s.counters.http.interimResponses == UInt64(c.interim))
        #expect(s.counters.http.unpairedResponseFirst == UInt64(c.unpairedResponseFirst))
        #expect(s.counters.http.truncatedMessages == UInt64(c.truncatedMessages))
        if let e = seen.all.first(where: \.truncated) {
            let json = try #require(try JSONSerialization.jsonObject(with: Data(e.jsonLine().utf8)) as? [String: Any])
            #expect(json["truncated"] as? Bool == true, "\(e.jsonLine())")
        }
        if c.expected.contains(where: { $0.hostFrom != nil }), let e = seen.all.first {
            let json = try #require(try JSONSerialization.jsonObject(with: Data(e.jsonLine().utf8)) as? [String: Any])
            #expect(json["host_from"] as? String == "address" && json["host"] == nil, "\(e.jsonLine())")
        }
    }
}
