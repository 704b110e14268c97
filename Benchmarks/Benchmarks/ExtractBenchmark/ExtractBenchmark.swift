// Application state extraction, one message at a time: QUIC client Initial decryption (v1 and v2), ClientHello
// parsing, HTTP/1.1 request and response parsing.
//
// Each outer iteration handles the same message 1000 times (scaling factor .kilo), so the scaled figures (*) are
// per message: ns per Initial decrypted / ClientHello / HTTP message, and throughput in messages/s (for QUIC:
// Initial decryptions per second). mallocCountTotal is recorded too (scaled: per message); it has no thresholds
// here: these paths run once per connection or per message and allocate what an event keeps (see
// AllocationsBenchmark for the per-packet claim).

import Benchmark
import Extract
import StatetapTestSupport

/// Messages per outer iteration: must equal the scaling factor, so one scaled iteration is one message.
let messagesPerIteration = 1000

/// RFC 9001 Appendix A.2 and RFC 9369 Appendix A.2: the protected client Initials of QUIC v1 and v2 (1200 bytes;
/// DCID 8394c8f03e515708; the ClientHello names example.com with ALPN "alpn"), from the tests' vectors.
let quicV1Initial = initialVectors[0].protectedPacket
let quicV2Initial = initialVectors[1].protectedPacket

struct ExtractSetupError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

// MARK: - QUIC

/// Decrypts the Initial and returns the first CRYPTO frame's data (the ClientHello), checking what it holds.
func checkedClientHello(_ datagram: [UInt8], version: UInt32) throws -> [UInt8] {
    guard case .initials(let initials) = QUICInitialParser.parse(datagram), initials.count == 1,
          initials[0].version == version, let crypto = initials[0].crypto.first
    else { throw ExtractSetupError(message: "the QUIC \(String(version, radix: 16)) Initial did not decrypt") }
    let info = try crypto.data.withUnsafeBytes { try ClientHelloParser.parse($0) }
    guard info.serverName == "example.com", info.alpn == ["alpn"] else {
        throw ExtractSetupError(message: "unexpected ClientHello in the QUIC Initial: \(info)")
    }
    return crypto.data
}

/// Parses (header protection, key derivation from the DCID, AEAD open, CRYPTO frames) one Initial per scaled
/// iteration, as `QUICTracker` does for each new connection.
@inline(__always)
func decryptAll(_ benchmark: Benchmark, _ datagram: [UInt8]) {
    var checksum: UInt64 = 0
    for _ in benchmark.scaledIterations {
        if case .initials(let initials) = QUICInitialParser.parse(datagram) {
            checksum &+= initials[0].packetNumber &+ UInt64(initials[0].crypto.count)
        }
    }
    blackHole(checksum)
}

// MARK: - ClientHello

/// A ClientHello shaped like a current Chrome's (about 1.8 KB): GREASE values, SNI, ALPN h2 and http/1.1, a
/// post-quantum X25519MLKEM768 key share (1216 bytes) and an x25519 one, supported_versions, a GREASE ECH
/// extension. The RFC's ClientHello is 241 bytes; real ones are this size, mostly key share.
func browserClientHello() -> [UInt8] {
    func u16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
    func ext(_ type: Int, _ body: [UInt8]) -> [UInt8] { u16(type) + u16(body.count) + body }
    func filler(_ n: Int, _ seed: UInt8) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37) &+ seed } }
    let name = Array("www.example-shop.com".utf8)
    let alpn: [UInt8] = [2] + Array("h2".utf8) + [8] + Array("http/1.1".utf8)
    var extensions: [UInt8] = []
    extensions += ext(0x0a0a, [])                                                        // GREASE
    extensions += ext(0, u16(name.count + 3) + [0] + u16(name.count) + name)           // server_name
    extensions += ext(23, [])                                                            // extended_master_secret
    extensions += ext(0xff01, [0])                                                       // renegotiation_info
    extensions += ext(10, u16(10) + u16(0x2a2a) + u16(0x11ec) + u16(0x1d) + u16(0x17) + u16(0x18))  // groups
    extensions += ext(11, [1, 0])                                                        // ec_point_formats
    extensions += ext(35, [])                                                            // session_ticket
    extensions += ext(16, u16(alpn.count) + alpn)                                        // ALPN
    extensions += ext(5, [1, 0, 0, 0, 0])                                                // status_request
    let signatures = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601].flatMap(u16)
    extensions += ext(13, u16(signatures.count) + signatures)                           // signature_algorithms
    extensions += ext(18, [])                                                            // SCT
    let shares = u16(0x2a2a) + u16(1) + [0] + u16(0x11ec) + u16(1216) + filler(1216, 3) + u16(0x1d) + u16(32)
        + filler(32, 9)
    extensions += ext(51, u16(shares.count) + shares)                                    // key_share
    extensions += ext(45, [1, 1])                                                        // psk_key_exchange_modes
    extensions += ext(43, [6] + u16(0x3a3a) + u16(0x0304) + u16(0x0303))                // supported_versions
    extensions += ext(27, [2, 0, 2])                                                     // compress_certificate
    extensions += ext(17513, u16(3) + [2] + Array("h2".utf8))                           // application_settings
    extensions += ext(0xfe0d, [0, 0, 1, 0, 1, 0x7a] + u16(32) + filler(32, 5) + u16(208) + filler(208, 7))  // ECH
    extensions += ext(0x4a4a, [0])                                                       // GREASE
    let ciphers = [0x1a1a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
                   0xc014, 0x009c, 0x009d, 0x002f, 0x0035].flatMap(u16)
    var body: [UInt8] = u16(0x0303) + filler(32, 1) + [32] + filler(32, 2)
    body += u16(ciphers.count) + ciphers + [1, 0] + u16(extensions.count) + extensions
    return [1, 0, UInt8(body.count >> 8), UInt8(body.count & 0xff)] + body
}

/// Parses the same ClientHello message once per scaled iteration.
@inline(__always)
func parseHellos(_ benchmark: Benchmark, _ message: [UInt8]) {
    var checksum = 0
    message.withUnsafeBytes { raw in
        for _ in benchmark.scaledIterations {
            if let info = try? ClientHelloParser.parse(raw) {
                checksum &+= info.alpn.count &+ (info.serverName?.utf8.count ?? 0) &+ info.supportedVersions.count
            }
        }
    }
    blackHole(checksum)
}

// MARK: - HTTP

/// A browser request as `statetap generate --mix http` writes them (the headers of a current mobile Chrome).
let httpRequest = Array("""
    GET /images/products/48211/800x800.jpg HTTP/1.1\r
    Host: img3.cdn17.example.net\r
    Connection: keep-alive\r
    User-Agent: Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36\r
    Accept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8\r
    Referer: http://www.news17.example.com/article/48211.html\r
    Accept-Encoding: gzip, deflate, br\r
    Accept-Language: de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7\r
    Cookie: sid=6f1c2a9be03d44f1a8c0e2b7d9f31c55; _ga=GA1.2.183920571.1731234567; consent=analytics%3Ayes\r
    \r

    """.utf8)

/// A CDN response header (Content-Length) and its 1200-byte body: the parser skips the body by length.
let httpResponse = Array("""
    HTTP/1.1 200 OK\r
    Date: Mon, 24 Nov 2025 16:00:00 GMT\r
    Server: nginx/1.25.3\r
    Content-Type: image/jpeg\r
    Content-Length: 1200\r
    Connection: keep-alive\r
    Cache-Control: public, max-age=86400\r
    ETag: "bc4b-5f2a63c1"\r
    Last-Modified: Fri, 03 Oct 2025 17:02:26 GMT\r
    Accept-Ranges: bytes\r
    Age: 5234\r
    Via: 1.1 varnish (Varnish/7.4), 1.1 edge-fra-3 (ApacheTrafficServer/9.2.3)\r
    X-Cache: HIT from edge-fra-3\r
    X-Cache-Hits: 12\r
    \r

    """.utf8) + [UInt8](repeating: 0x5a, count: 1200)

/// The same response with its 1200 bytes in chunked coding (three 400-byte chunks, then the last chunk).
let httpChunkedResponse = Array("""
    HTTP/1.1 200 OK\r
    Date: Mon, 24 Nov 2025 16:00:00 GMT\r
    Server: openresty\r
    Content-Type: application/json\r
    Transfer-Encoding: chunked\r
    Connection: keep-alive\r
    Cache-Control: public, max-age=30\r
    Vary: Accept-Encoding\r
    Age: 12\r
    Via: 1.1 varnish (Varnish/7.4), 1.1 edge-fra-3 (ApacheTrafficServer/9.2.3)\r
    X-Cache: HIT from edge-fra-3\r
    \r

    """.utf8) + (0..<3).flatMap { _ in Array("190\r\n".utf8) + [UInt8](repeating: 0x61, count: 400) + [13, 10] }
    + Array("0\r\n\r\n".utf8)

/// One side of a keep-alive connection fed the same message again and again: one message per feed.
final class HTTPState: @unchecked Sendable {
    // @unchecked Sendable: only the benchmark thread touches it after setup.
    var parser: HTTPStreamParser
    let message: [UInt8]
    /// Messages emitted by the measured feeds (a property, not a captured local: nothing to box).
    var emitted = 0

    init(side: HTTPStreamParser.Side, message: [UInt8]) throws {
        parser = HTTPStreamParser(side: side, fromStart: true)
        self.message = message
        // Two messages in a row, to check the parser is back at a message boundary after each.
        for round in 0..<2 {
            var got: [HTTPStreamParser.Message] = []
            message.withUnsafeBytes { raw in parser.feed(raw) { got.append($0) } }
            switch (side, got.first) {
            case (.client, .request(let r)?) where got.count == 1:
                guard r.url == "http://img3.cdn17.example.net/images/products/48211/800x800.jpg" else {
                    throw ExtractSetupError(message: "request \(round): url \(r.url ?? "nil")")
                }
            case (.server, .response(let r)?) where got.count == 1:
                guard r.status == 200, r.headers["via"] != nil, r.headers["cache-control"] != nil else {
                    throw ExtractSetupError(message: "response \(round): \(r)")
                }
            default:
                throw ExtractSetupError(message: "feed \(round) gave \(got.count) messages: \(got)")
            }
        }
    }

    /// Feeds the message once per scaled iteration; counts the messages emitted.
    @inline(__always)
    func run(_ benchmark: Benchmark) {
        message.withUnsafeBytes { raw in
            for _ in benchmark.scaledIterations {
                parser.feed(raw) { _ in self.emitted &+= 1 }
            }
        }
        blackHole(emitted)
    }
}

let benchmarks: @Sendable () -> Void = {
    precondition(BenchmarkScalingFactor.kilo.rawValue == messagesPerIteration)
    let configuration = Benchmark.Configuration(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 10_000,
        thresholds: [
            // Time is noisy on a shared 2-core machine: flag only large slowdowns (percent, per percentile).
            .wallClock: BenchmarkThresholds(relative: [.p50: 25]),
            .throughput: BenchmarkThresholds(relative: [.p50: 25]),
        ])

    // QUIC Initial decryptions per second: derive the Initial keys from the DCID (HKDF-Extract and three
    // Expand-Labels), remove header protection (one AES block), open the payload (AES-128-GCM over ~1150
    // bytes), collect the CRYPTO frames.
    for (name, initial, version) in [("v1", quicV1Initial, UInt32(1)), ("v2", quicV2Initial, UInt32(0x6b33_43cf))] {
        Benchmark("Extract.quicInitial.\(name)", configuration: configuration) { benchmark, datagram in
            decryptAll(benchmark, datagram)
        } setup: {
            _ = try checkedClientHello(initial, version: version)
            return initial
        }
    }

    // ClientHello parsing: the RFC 9001 one (241 bytes, from the decrypted Initial) and a browser-sized one.
    Benchmark("Extract.clientHello.rfc9001", configuration: configuration) { benchmark, message in
        parseHellos(benchmark, message)
    } setup: {
        try checkedClientHello(quicV1Initial, version: 1)
    }
    Benchmark("Extract.clientHello.browser", configuration: configuration) { benchmark, message in
        parseHellos(benchmark, message)
    } setup: {
        let message = browserClientHello()
        let info = try message.withUnsafeBytes { try ClientHelloParser.parse($0) }
        guard info.serverName == "www.example-shop.com", info.alpn == ["h2", "http/1.1"],
              info.supportedVersions == [0x0304, 0x0303], info.encryptedClientHello, !info.truncated
        else { throw ExtractSetupError(message: "browser ClientHello parsed as \(info)") }
        return message
    }

    // HTTP/1.1 messages, header block and all: request line and headers (what a web_link keeps: method, URL,
    // host, version), response status and the kept headers, body skipped by length or by chunks.
    Benchmark("Extract.http.request", configuration: configuration) { benchmark, state in
        state.run(benchmark)
    } setup: {
        try HTTPState(side: .client, message: httpRequest)
    }
    Benchmark("Extract.http.response", configuration: configuration) { benchmark, state in
        state.run(benchmark)
    } setup: {
        try HTTPState(side: .server, message: httpResponse)
    }
    Benchmark("Extract.http.response-chunked", configuration: configuration) { benchmark, state in
        state.run(benchmark)
    } setup: {
        try HTTPState(side: .server, message: httpChunkedResponse)
    }
}
