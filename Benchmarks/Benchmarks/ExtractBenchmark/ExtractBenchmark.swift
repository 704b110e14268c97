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

/// Messages per outer iteration: must equal the scaling factor, so one scaled iteration is one message.
let messagesPerIteration = 1000

/// RFC 9001 Appendix A.2: the client Initial of QUIC v1, protected (1200 bytes; DCID 8394c8f03e515708; its
/// ClientHello names example.com with ALPN "alpn"). The same bytes as ../shared/quic-initial-vectors.json.
let quicV1Initial = hex("""
    c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11d242b123dc9bd8bab936b47d92ec356c0bab
    7df5976d27cd449f63300099f3991c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c8eb7539e
    c4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df621230c83711b39343fa028cea7f7fb5ff89eac2308249a0
    2252155e2347b63d58c5457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c2084dce25ff9b06cde5
    35d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760
    b7bad1db4ba3485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db059ae0648db2f64264ed5e39
    be2e20d82df566da8dd5998ccabdae053060ae6c7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363a
    a5f89937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556be52afe3f565636ad1b17d508b73d874
    3eeb524be22b3dcbc2c7468d54119c7468449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663ac698
    90f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00f064c99e3dd97911d39fe9c5d0b23a229a234cb3
    6186c4819e8b9c5927726632291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe5896425c5bac4aee8
    2e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c
    1f28ff18f58891ffef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198e3fc433f9f2541010ae1
    7c1bf202580f6047472fb36857fe843b19f5984009ddc324044e847a4f4a0ab34f719595de37252d6235365e9b84392b0610
    85349d73203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77fcb2c0e0eb605cb0504db87632cf3
    d8b4dae6e705769d1de354270123cb11450efc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade
    a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e72404790a2181014f3b94a4e97d117b438130368cc
    39dbb2d198065ae3986547926cd2162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f440591f35
    5e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca06948109f23f350db82123535eb8a7433bdabcb909271
    a6ecbcb58b936a88cd4e8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0be79e2fb8f5d5fbb
    e2e30ecadd220723c8c0aea8078cdfcb3868263ff8f0940054da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64
    491c85194aab760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9f96f3ca9ec1dde434da7d2d3
    92b905ddf3d1f9af93d1af5950bd493f5aa731b4056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd468
    40647e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241e221af44860018ab0856972e194cd934
    """.filter { !$0.isWhitespace })

/// RFC 9369 Appendix A.2: the same ClientHello in a QUIC v2 client Initial (other salt, labels and type bits).
let quicV2Initial = hex("""
    d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485dd04de806071bf03dceebfa162e75d6c9605
    8bdbfb127cdfcbf903388e99ad049f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d250f2c4f
    0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243cf1a12834e3f249a78d395e0d18f4d766004f1a2674802a7
    47eaa901c3f10cda5500cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd6818f6625efce3b6de
    f6ba7e4b37a40f7732e093daa7d52190935b8da58976ff3312ae50b187c1433c0f028edcc4c2838b6a9bfc226ca4b4530e7a
    4ccee1bfa2a3d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd6f7521a3f6c7d5dd3ec9b3f2
    33773d4b46d23cc375eb198c63301c21801f6520bcfb7966fc49b393f0061d974a2706df8c4a9449f11d7f3d2dcbb90c6b87
    7045636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452aaa549e27a1fac7cf4ed77f322e8fa894b6a83810a34
    b361901751a6f5eb65a0326e07de7c1216ccce2d0193f958bb3850a833f7ae432b65bc5a53975c155aa4bcb4f7b2c4e54df1
    6efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4fdf85290fdd893d577b1131a610ef6a5c32b2ee0
    293617a37cbb08b847741c3b8017c25ca9052ca1079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de714d19d61370f
    8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff99c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c44
    6151adfeceb51b91abfe43960977c87471cf9ad4074d30e10d6a7f03c63bd5d4317f68ff325ba3bd80bf4dc8b52a0ba03175
    8022eb025cdd770b44d6d6cf0670f4e990b22347a7db848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b6
    14eaed18d703dd84045a274ae8bfa73379661388d6991fe39b0d93debb41700b41f90a15c4d526250235ddcd6776fc77bc97
    e7a417ebcb31600d01e57f32162a8560cacc7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61
    f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e7071010d3f270121b493ce85054ef58bada423101
    38fe081adb04e2bd901f2f13458b3d6758158197107c14ebb193230cd1157380aa79cae1374a7c1e5bbcb80ee23e06ebfde2
    06bfb0fcbc0edc4ebec309661bdd908d532eb0c6adc38b7ca7331dce8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3
    899f31f0eed19e3417d134b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1e86215c2d54e6670
    e07383a27bbffb5addf47d66aa85a0c6f9f32e59d85a44dd5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ec
    abee93dfc6e38d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89d5974ee12e5cf7d5da4d6a31
    123041f33e61407e76cffcdcfd7e19ba58cf4b536f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85
    cb199a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96ba18b2faa745b6fe189cf772a9f84cbfc
    """.filter { !$0.isWhitespace })

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
