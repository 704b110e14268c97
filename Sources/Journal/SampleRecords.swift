import Decode
import Extract

/// Realistic journal records for benchmarks and the crash and size tests: web links of many devices to CDN-like
/// hosts, with object paths carrying ids, cache headers and validators; every 8th a server_name. Deterministic.
public struct SampleRecords {
    private var state: UInt64
    private let devices: Int

    public init(seed: UInt64 = 0x5eed, devices: Int = 5000) {
        state = seed | 1
        self.devices = devices
    }

    private mutating func next() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }

    private static let hosts = ["img.cdn.example", "static.shop.example", "video.stream.example", "api.news.example",
                                "assets.game.example", "fonts.cdn.example", "media.social.example", "maps.tiles.example"]
    private static let kinds = [("image/jpeg", "jpg"), ("image/png", "png"), ("text/css", "css"),
                                ("application/javascript", "js"), ("video/mp4", "m4s"), ("application/json", "json")]
    private static let hex = Array("0123456789abcdef".utf8)

    /// `n` hex digits of `v` (ids of objects: the same object always has the same id).
    private static func hexDigits(_ v: UInt64, _ n: Int) -> String {
        String(decoding: (0..<n).map { Self.hex[Int(v >> UInt64(4 * $0) & 15)] }, as: UTF8.self)
    }

    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Record number `i` (its timestamp grows with `i`).
    public mutating func record(_ i: Int) -> JournalRecord {
        let r = next()
        let device = IPAddress(ipv4: 0x0A2D_0000 | UInt32(r % UInt64(devices)))
        let host = Self.hosts[Int(r >> 20) % Self.hosts.count]
        let ts = 1_700_000_000_000_000_000 &+ UInt64(i) &* 1_000_000
        let server = IPAddress(ipv4: 0xCB00_7100 | UInt32(r >> 40 & 0xff))
        if i % 8 == 7 {
            var e = StateEvent(kind: .serverName, timestampNanoseconds: ts, device: device, client: device,
                               clientPort: UInt16(32768 + r % 28000), server: server, serverPort: 443, vlans: [],
                               teid: UInt32(truncatingIfNeeded: r >> 8))
            e.transport = r & 1 == 0 ? "tls" : "quic"
            e.serverName = host
            e.alpn = r & 1 == 0 ? ["h2", "http/1.1"] : ["h3"]
            e.tlsVersions = [0x0304, 0x0303]
            return .event(e)
        }
        let (type, ext) = Self.kinds[Int(r >> 28) % Self.kinds.count]
        var e = StateEvent(kind: .webLink, timestampNanoseconds: ts, device: device, client: device,
                           clientPort: UInt16(32768 + r % 28000), server: server, serverPort: 80, vlans: [],
                           teid: UInt32(truncatingIfNeeded: r >> 8))
        e.method = "GET"
        e.host = host
        e.httpVersion = "HTTP/1.1"
        // Objects are fetched again and again (that is what caches are for): 20,000 per host, the popular ones
        // more often; an object keeps its path and validators.
        let object = UInt64(min(next() % 20_000, next() % 20_000)) &+ ((r >> 20) % UInt64(Self.hosts.count)) &* 1_000_000
        let o = Self.mix(object)
        e.url = "http://\(host)/v\(o >> 33 & 7)/\(Self.hexDigits(o, 4))/\(Self.hexDigits(o >> 16, 16)).\(ext)?w=\(320 << (o >> 36 & 3))"
        e.status = r >> 50 & 15 == 0 ? 304 : 200
        e.cacheable = r >> 55 & 7 != 0
        e.proxy = "edge-\(r >> 58 & 3)"
        e.responseHeaders = [
            "cache-control": e.cacheable == true ? "public, max-age=\(3600 << (r >> 44 & 3))" : "private, no-store",
            "etag": "\"\(Self.hexDigits(Self.mix(o), 12))\"", "content-type": type, "content-length": String(r >> 12 & 0xfffff),
            "via": "1.1 \(e.proxy!) (statetap-edge)", "x-cache": r & 2 == 0 ? "HIT" : "MISS",
            "last-modified": "Tue, 24 Nov 2026 10:\(10 + r % 50):00 GMT",
        ]
        return .event(e)
    }
}
