import Extract
import Testing

/// Feeds `text` in chunks of `chunk` bytes and collects the messages.
private func parse(_ text: String, side: HTTPStreamParser.Side, chunk: Int, fromStart: Bool = true,
                   methods: [String] = []) -> [HTTPStreamParser.Message]
{
    var p = HTTPStreamParser(side: side, fromStart: fromStart)
    p.pendingMethods = methods
    var out: [HTTPStreamParser.Message] = []
    let bytes = Array(text.utf8)
    var i = 0
    while i < bytes.count {
        let part = Array(bytes[i..<min(i + chunk, bytes.count)])
        part.withUnsafeBytes { p.feed($0) { out.append($0) } }
        i += chunk
    }
    return out
}

private func requests(_ m: [HTTPStreamParser.Message]) -> [HTTPRequest] {
    m.compactMap { if case .request(let r) = $0 { r } else { nil } }
}

private func responses(_ m: [HTTPStreamParser.Message]) -> [HTTPResponse] {
    m.compactMap { if case .response(let r) = $0 { r } else { nil } }
}

@Suite("HTTP/1.x parsing")
struct HTTPTests {
    @Test("pipelined requests with bodies, split anywhere", arguments: [1, 3, 17, 4096])
    func pipelined(chunk: Int) {
        let text = "GET /a?x=1 HTTP/1.1\r\nHost: edge.example\r\n\r\n"
            + "POST /form HTTP/1.1\r\nHost: edge.example\r\nContent-Length: 11\r\n\r\nhello=world"
            + "PUT /up HTTP/1.1\r\nHost: edge.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nT: 1\r\n\r\n"
            + "GET http://other.example/abs HTTP/1.0\r\n\r\n"
        let r = requests(parse(text, side: .client, chunk: chunk))
        #expect(r.map(\.method) == ["GET", "POST", "PUT", "GET"])
        #expect(r.map(\.url) == ["http://edge.example/a?x=1", "http://edge.example/form", "http://edge.example/up",
                                 "http://other.example/abs"])
        #expect(r[3].version == "HTTP/1.0")
    }

    @Test("responses: bodies by length, chunked, none for HEAD/204/304, 100-continue, headers kept", arguments: [1, 5, 4096])
    func responsesInOrder(chunk: Int) {
        let text = "HTTP/1.1 100 Continue\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nCache-Control: max-age=60\r\nETag: \"v1\"\r\nVia: 1.1 edge-a\r\nX-Cache: HIT\r\n\r\nhello"
            + "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"  // HEAD: no body despite the length
            + "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            + "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n"
            + "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        let r = responses(parse(text, side: .server, chunk: chunk, methods: ["POST", "HEAD", "GET", "GET", "GET"]))
        #expect(r.map(\.status) == [200, 200, 200, 304, 404])
        #expect(r[0].headers["cache-control"] == "max-age=60" && r[0].headers["etag"] == "\"v1\"")
        #expect(r[0].headers["via"] == "1.1 edge-a" && r[0].headers["x-cache"] == "HIT")
    }

    @Test("mid-stream pickup resynchronizes on the next message; a body without length runs to the close")
    func midStream() {
        let text = "tail of a body\r\nmore\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n"
        #expect(requests(parse(text, side: .client, chunk: 7, fromStart: false)).map(\.url) == ["http://h/next"])
        let server = "HTTP/1.0 200 OK\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"  // the second is body of the first
        #expect(responses(parse(server, side: .server, chunk: 100)).count == 1)
    }

    @Test("CONNECT has no URL; a 2xx makes the rest a tunnel")
    func connect() {
        let r = requests(parse("CONNECT abc:443 HTTP/1.1\r\nHost: abc:443\r\n\r\n", side: .client, chunk: 100))
        #expect(r.first?.method == "CONNECT" && r.first?.url == nil)
        let s = responses(parse("HTTP/1.1 200 Connection established\r\n\r\n\u{16}\u{3}\u{1}garbage HTTP/1.1 200 OK\r\n\r\n",
                                side: .server, chunk: 100, methods: ["CONNECT"]))
        #expect(s.count == 1)
    }

    @Test("the serving edge proxy: last Via hop, else X-Cache's host, else Server")
    func proxy() {
        #expect(EdgeProxy.identify(HTTPResponse(status: 200, version: "HTTP/1.1",
                                                headers: ["via": "1.1 origin-shield, 1.1 edge-a (nginx)", "server": "nginx"])) == "edge-a")
        #expect(EdgeProxy.identify(HTTPResponse(status: 200, version: "HTTP/1.1", headers: ["x-cache": "HIT from edge-b"])) == "edge-b")
        #expect(EdgeProxy.identify(HTTPResponse(status: 200, version: "HTTP/1.1", headers: ["server": "ATS/9.2"])) == "ATS/9.2")
        #expect(EdgeProxy.identify(HTTPResponse(status: 200, version: "HTTP/1.1")) == nil)
    }

    @Test("RFC 9111 storage decision", arguments: [
        ("GET", 200, ["cache-control": "max-age=60"], true),
        ("GET", 200, [:], true),  // heuristically cacheable status
        ("GET", 302, [:], false),
        ("GET", 302, ["expires": "Thu, 01 Jan 2099 00:00:00 GMT"], true),
        ("GET", 200, ["cache-control": "no-store"], false),
        ("GET", 200, ["cache-control": "private, max-age=60"], false),
        ("GET", 200, ["vary": "*"], false),
        ("POST", 200, ["cache-control": "max-age=60"], false),
        ("GET", 200, ["cache-control": "no-cache"], true),  // storable, revalidated before use
    ] as [(String, Int, [String: String], Bool)])
    func cacheability(method: String, status: Int, headers: [String: String], expected: Bool) {
        var r = HTTPResponse(status: status, version: "HTTP/1.1")
        r.headers = headers
        #expect(Cacheability.isCacheable(method: method, response: r) == expected)
    }

    @Test("a gap inside a body of known length is skipped exactly: the next response is read, nothing lost")
    func gapInBody() {
        var p = HTTPStreamParser(side: .server, fromStart: true)
        p.pendingMethods = ["GET", "GET", "GET"]
        var out: [HTTPStreamParser.Message] = []
        func feed(_ s: String) { Array(s.utf8).withUnsafeBytes { p.feed($0) { out.append($0) } } }
        feed("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + String(repeating: "a", count: 30))
        p.gap(50) { out.append($0) }  // inside the body: 20 bytes of it remain
        feed(String(repeating: "b", count: 20) + "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123")
        p.gap(12) { out.append($0) }  // the rest of the chunk's data exactly
        feed("\r\n0\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n")
        #expect(responses(out).map(\.status) == [200, 404, 304])
        #expect(!out.contains { if case .lostSync = $0 { true } else { false } })
    }

    @Test("a gap that may hold message starts loses sync once, and the parser resynchronizes on the next message")
    func gapLosesSync() {
        var p = HTTPStreamParser(side: .server, fromStart: true)
        var out: [HTTPStreamParser.Message] = []
        func feed(_ s: String) { Array(s.utf8).withUnsafeBytes { p.feed($0) { out.append($0) } } }
        feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123")
        p.gap(500) { out.append($0) }  // longer than the body's rest: a whole response may be in it
        p.gap(7) { out.append($0) }    // still out of sync: not reported twice
        feed("tail of something\r\nX: y\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
        let kinds = out.map { m -> String in
            switch m {
            case .request: "request"
            case .response(let r): "\(r.status)"
            case .lostSync: "lost"
            }
        }
        #expect(kinds == ["200", "lost", "204"])
    }

    @Test("endless header lines and chunk lines: memory held stays bounded, the message is counted malformed")
    func endless() {
        for (side, start) in [(HTTPStreamParser.Side.client, "GET / HTTP/1.1\r\nX-Long: "),
                              (.server, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")] {
            var p = HTTPStreamParser(side: side, fromStart: true)
            var out: [HTTPStreamParser.Message] = []
            Array(start.utf8).withUnsafeBytes { p.feed($0) { out.append($0) } }
            let filler = [UInt8](repeating: 0x61, count: 4096)  // 'a' without end: 16 MB in all
            var peak = 0
            for _ in 0..<4096 {
                filler.withUnsafeBytes { p.feed($0) { out.append($0) } }
                peak = max(peak, p.heldBytes)
            }
            #expect(peak <= HTTPStreamParser.maxHeader + HTTPStreamParser.maxChunkLine)
            #expect(p.malformed >= 1)
            #expect(requests(out).isEmpty)
        }
    }
}
