import Testing
@testable import Extract

/// Header values built from pieces that stress the readings: separators, case, whitespace, and non-ASCII text
/// whose Unicode rules (combining marks, the Kelvin sign, dotted capital I) differ from byte rules.
private let pieces = ["no-store", "NO-STORE", "private", "Private", "max-age", "MAX-AGE", "s-maxage", "public",
                      "PUBLIC", "no-cache", "from", "FROM", "From", "edge-a", "1.1", "*", "=", "==", ",", ",,", " ",
                      "  ", "\t", "60", "é", "\u{301}", ",\u{301}", " \u{301}", "\u{212A}", "\u{130}", "x"]

private struct Draw {
    var state: UInt64
    mutating func int(_ n: Int) -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int((state >> 33) % UInt64(n))
    }
    mutating func value() -> String { (0..<int(7)).map { _ in pieces[int(pieces.count)] }.joined() }
}

@Suite("Cacheability and EdgeProxy byte readings")
struct CacheabilityTests {
    @Test("the byte readings decide exactly as the Character readings, for 50000 varied responses")
    func sameAsCharacterReading() {
        var d = Draw(state: 3)
        let names = ["cache-control", "vary", "pragma", "expires", "via", "x-cache", "server"]
        for _ in 0..<50000 {
            var r = HTTPResponse(status: [200, 204, 302, 404, 500, 100][d.int(6)], version: "HTTP/1.1")
            for name in names where d.int(3) > 0 { r.headers[name] = d.value() }
            let method = ["GET", "HEAD", "POST"][d.int(3)]
            let slow = (method == "GET" || method == "HEAD") && r.status >= 200
                && Cacheability.slowIsCacheable(r, r.headers["cache-control"] ?? "")
            #expect(Cacheability.isCacheable(method: method, response: r) == slow, "\(r.headers)")
            #expect(EdgeProxy.identify(r) == EdgeProxy.slowIdentify(r), "\(r.headers)")
        }
    }

    @Test("known decisions", arguments: [
        (["cache-control": "max-age=60"], true, nil),
        (["cache-control": " No-Store , max-age=60"], false, nil),
        (["cache-control": "private"], false, nil),
        (["vary": " * "], false, nil),
        (["via": "1.0 a, 1.1 edge-b (nginx),,"], true, "edge-b"),
        (["x-cache": "HIT from edge-c", "server": "nginx"], true, "edge-c"),
        (["server": "  nginx/1.25 "], true, "nginx/1.25"),
    ] as [([String: String], Bool, String?)])
    func known(_ headers: [String: String], _ cacheable: Bool, _ proxy: String?) {
        let r = HTTPResponse(status: 200, version: "HTTP/1.1", headers: headers)
        #expect(Cacheability.isCacheable(method: "GET", response: r) == cacheable)
        #expect(EdgeProxy.identify(r) == proxy)
    }
}
