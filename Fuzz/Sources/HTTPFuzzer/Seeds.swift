// Seed inputs for the HTTP harness: small literal exchanges covering what the parser handles (lengths, chunked
// bodies with extensions and trailers, HEAD, 1xx, CONNECT, pipelining, bare LF, mid-stream pickup), cut into
// segments of both directions.
import FuzzSupport

/// One direction's bytes in a seed: `server` for responses.
struct Piece {
    var server: Bool
    var bytes: [UInt8]
    /// A gap of `gap` bytes (0: of unknown size) in this direction instead of bytes.
    var gap: Int?
}

/// A harness input: the pieces in order, each cut into segments of at most `segment` bytes; what does not fit
/// in the 16 segment descriptors goes in the last piece's direction.
func httpInput(fromStart: Bool = true, segment: Int = 63, _ pieces: [Piece]) -> [UInt8] {
    var descriptors: [UInt8] = []
    var stream: [UInt8] = []
    for p in pieces {
        let direction: UInt8 = p.server ? 0x80 : 0
        if let gap = p.gap {
            if descriptors.count < 16 { descriptors.append(direction | 0x40 | UInt8(min(gap, 63))) }
            continue
        }
        var rest = p.bytes[...]
        while !rest.isEmpty {
            let n = min(rest.count, segment, 63)
            if descriptors.count < 16 { descriptors.append(direction | UInt8(n)) }
            stream += rest.prefix(n)
            rest = rest.dropFirst(n)
        }
    }
    let lastServer = pieces.last?.server ?? false
    let options: UInt8 = (fromStart ? 1 : 0) | (lastServer ? 2 : 0)
    return [options, UInt8(descriptors.count)] + descriptors + stream
}

func request(_ s: String) -> Piece { Piece(server: false, bytes: ascii(s)) }
func response(_ s: String) -> Piece { Piece(server: true, bytes: ascii(s)) }

func httpSeeds() -> [Seed] {
    let get = "GET /index.html HTTP/1.1\r\nHost: edge.example\r\nUser-Agent: fuzz\r\nAccept: */*\r\n\r\n"
    let ok = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nCache-Control: public, max-age=60\r\nETag: \"x\"\r\n"
        + "Via: 1.1 edge-a (nginx)\r\nContent-Type: text/html\r\n\r\nhello"
    let chunkedHeader = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    // A server writing one chunk per send: each segment starts with a chunk-size line.
    let chunked = [response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Cache: HIT from edge-b\r\n\r\n"),
                   response("5;ext=1\r\nhello\r\n"), response("1a\r\nabcdefghijklmnopqrstuvwxyz\r\n"),
                   response("0\r\nTrailer: t\r\n\r\n")]
    let inputs: [(String, [UInt8])] = [
        ("get-200", httpInput([request(get), response(ok)])),
        ("get-200-small-segments", httpInput(segment: 9, [request(get), response(ok)])),
        ("chunked", httpInput([request(get)] + chunked)),
        ("post-length-pipelined", httpInput([
            request("POST /api HTTP/1.1\r\nHost: api.example\r\nContent-Length: 11\r\n\r\n{\"a\":\"b\"}\r\n"
                    + "GET /next HTTP/1.1\r\nHost: api.example\r\n\r\n"),
            response("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n" + ok),
        ])),
        ("chunked-request", httpInput([
            request("PUT /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
            response("HTTP/1.1 204 No Content\r\nDate: Tue, 25 Nov 2025 10:00:00 GMT\r\n\r\n"),
        ])),
        ("head", httpInput([request("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"),
                            response("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nExpires: 0\r\n\r\n")])),
        ("continue", httpInput([
            request("POST /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"),
            response("HTTP/1.1 100 Continue\r\n\r\n"), request("abc"),
            response("HTTP/1.1 200 OK\r\nVary: *\r\nContent-Length: 2\r\n\r\nok"),
        ])),
        ("connect", httpInput([
            request("CONNECT edge.example:443 HTTP/1.1\r\nHost: edge.example:443\r\n\r\n"),
            response("HTTP/1.1 200 Connection established\r\n\r\n"),
            Piece(server: false, bytes: [22, 3, 1, 0, 4, 1, 0, 0, 0]), Piece(server: true, bytes: [22, 3, 3, 0, 1, 2]),
        ])),
        ("until-close", httpInput([request("GET http://edge.example/abs HTTP/1.0\r\n\r\n"),
                                   response("HTTP/1.0 200 OK\r\nServer: origin/1.0\r\nPragma: no-cache\r\n\r\nbody")])),
        ("not-modified", httpInput([
            request("GET /a HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"x\"\r\n\r\n"),
            response("HTTP/1.1 304 Not Modified\r\nAge: 10\r\nCache-Control: private, no-store\r\n\r\n"),
        ])),
        ("bare-lf", httpInput([request("GET / HTTP/1.1\nHost: lf.example\n\n"),
                               response("HTTP/1.1 404 Not Found\nContent-Length: 0\n\n")])),
        ("mid-stream", httpInput(fromStart: false, [
            request("ody of something\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n"),
            response("xx\r\n\r\nHTTP/1.1 301 Moved Permanently\r\nX-Cache-Status: MISS\r\nContent-Length: 0\r\n\r\n"),
        ])),
        ("gap-unknown", httpInput([request("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
                                   response("HTTP/1.1 200 OK\r\nContent-Len"), Piece(server: true, bytes: [], gap: 0),
                                   response("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")])),
        ("gap-in-body", httpInput([request("GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"),
                                   response("HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n0123456789"),
                                   Piece(server: true, bytes: [], gap: 10), response("0123456789"),
                                   response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123"),
                                   Piece(server: true, bytes: [], gap: 12), response("\r\n0\r\n\r\n")])),
        ("http09", httpInput([request("GET /\r\n\r\n")])),
        // Regressions: signed chunk sizes once moved the parser backwards (a hang at -5, a read before the segment
        // at -1, a wild read at -7fffffffffffffff); they must be malformed.
        ("chunk-size-minus-5", httpInput([response(chunkedHeader + "-5\r\nx")])),
        ("chunk-size-minus-1-at-segment-end", httpInput([response(chunkedHeader + "-1\r\n"), response("x")])),
        ("chunk-size-huge-negative", httpInput([response(chunkedHeader + "-7fffffffffffffff\r\nx")])),
    ]
    return inputs.enumerated().map { Seed("\($0.offset)-\($0.element.0)", $0.element.1) }
}

/// Tokens the parser compares against (libFuzzer splices them into inputs).
let httpDictionary: [[UInt8]] = [
    "GET ", "HEAD ", "POST ", "PUT ", "CONNECT ", "OPTIONS ", " HTTP/1.1", "HTTP/1.1 ", "HTTP/1.0 ", "HTTP/", "\r\n",
    "\r\n\r\n", "\n\n", "Host: ", "Content-Length: ", "content-length:", "Transfer-Encoding: chunked", "chunked",
    "Cache-Control: ", "no-store", "private", "max-age=", "s-maxage=", "public", "Vary: *", "Via: 1.1 ",
    "X-Cache: HIT from ", "Server: ", "Expires: ", "Pragma: no-cache", "ETag: ", "Age: ", "0\r\n\r\n", ";ext",
    "100 Continue", "101 ", "200 OK", "204 ", "304 ", "http://", "https://",
    // Number edge cases for Content-Length, status codes and chunk sizes.
    "-1", "+1", "0x10", "ffffffff", "7fffffffffffffff", "18446744073709551616",
].map(ascii)
