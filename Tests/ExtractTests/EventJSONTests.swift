import Decode
import Testing
@testable import Extract

/// The String-building encoder the byte encoder replaced, kept as the reference: the JSON lines must stay
/// byte-identical.
private func referenceJSONLine(_ e: StateEvent) -> String {
    func hex2(_ b: UInt8) -> String {
        let d = Array("0123456789abcdef")
        return String([d[Int(b >> 4)], d[Int(b & 15)]])
    }
    func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += "\\u00" + hex2(UInt8(u.value)) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
    func endpoint(_ a: IPAddress, _ port: UInt16) -> String {
        a.isIPv6 ? "[\(a.description)]:\(port)" : "\(a.description):\(port)"
    }
    func tlsVersionName(_ v: UInt16) -> String {
        switch v {
        case 0x0304: "TLS 1.3"
        case 0x0303: "TLS 1.2"
        case 0x0302: "TLS 1.1"
        case 0x0301: "TLS 1.0"
        case 0x0300: "SSL 3.0"
        default: v >> 8 == 0x7f ? "TLS 1.3 draft \(v & 0xff)" : "0x" + hex2(UInt8(v >> 8)) + hex2(UInt8(v & 0xff))
        }
    }
    var out = "{\"kind\":\"\(e.kind.rawValue)\""
    let seconds = e.timestampNanoseconds / 1_000_000_000, fraction = e.timestampNanoseconds % 1_000_000_000
    var frac = String(fraction)
    frac = String(repeating: "0", count: 9 - frac.count) + frac
    out += ",\"ts\":\(seconds).\(frac)"
    out += ",\"device\":\(quote(e.device.description))"
    out += ",\"client\":\(quote(endpoint(e.client, e.clientPort))),\"server\":\(quote(endpoint(e.server, e.serverPort)))"
    if !e.vlans.isEmpty { out += ",\"vlan\":[" + e.vlans.map(String.init).joined(separator: ",") + "]" }
    if let teid = e.teid { out += ",\"teid\":\(teid)" }
    if e.kind == .webLink {
        if let method = e.method { out += ",\"method\":\(quote(method))" }
        if let url = e.url { out += ",\"url\":\(quote(url))" }
        if let host = e.host { out += ",\"host\":\(quote(host))" }
        if let v = e.httpVersion { out += ",\"version\":\(quote(v))" }
        if let status = e.status { out += ",\"status\":\(status)" }
        for (header, field, numeric) in StateEvent.responseFields {
            guard let v = e.responseHeaders[header] else { continue }
            if numeric {
                if let n = Int(v.trimmingSpaces()) { out += ",\"\(field)\":\(n)" }
            } else {
                out += ",\"\(field)\":\(quote(v))"
            }
        }
        if let cacheable = e.cacheable { out += ",\"cacheable\":\(cacheable)" }
        if let proxy = e.proxy { out += ",\"proxy\":\(quote(proxy))" }
        // HTTPS (issue 20): read inside TLS; the connection's ALPN.
        if !e.transport.isEmpty { out += ",\"transport\":\(quote(e.transport))" }
        if let alpn = e.alpn.last { out += ",\"alpn\":\(quote(alpn))" }
    }
    if e.kind == .serverName {
        out += ",\"transport\":\(quote(e.transport))"
        if let sni = e.serverName { out += ",\"sni\":\(quote(sni))" }
        out += ",\"alpn\":[" + e.alpn.map(quote).joined(separator: ",") + "]"
        if !e.tlsVersions.isEmpty {
            out += ",\"tls_versions\":[" + e.tlsVersions.map { quote(tlsVersionName($0)) }.joined(separator: ",") + "]"
        }
        if let q = e.quicVersion {
            out += ",\"quic_version\":\"0x\((0..<4).map { hex2(UInt8(truncatingIfNeeded: q >> (24 - 8 * $0))) }.joined())\""
        }
        if !e.dcid.isEmpty { out += ",\"dcid\":\"" + e.dcid.map { hex2($0) }.joined() + "\"" }
        if e.encryptedClientHello { out += ",\"ech\":true" }
    }
    return out + "}"
}

/// Deterministic pseudo-random choices.
private struct Draw {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 11
    }
    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func bool() -> Bool { next() & 1 == 0 }
    mutating func pick<T>(_ xs: [T]) -> T { xs[int(xs.count)] }
}

private let texts = ["", "a", "GET", "http://edge.example/a b?c=\"d\"", "back\\slash", "tab\there", "cr\rlf\n",
                     "\u{01}\u{1f}\u{7f}", "é", "e\u{301}", "日本", "😀", " 42 ", "+7", "-0", "007", "\t12\t",
                     "99999999999999999999", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
                     "12a", "+", "-", " ", "max-age=60, public", "1.1 edge-a (nginx)", "\"etag\""]

private func address(_ d: inout Draw) -> IPAddress {
    if d.bool() { return IPAddress(ipv4: UInt32(truncatingIfNeeded: d.next())) }
    // IPv6 with zero groups in varied places (RFC 5952 compression).
    var hi: UInt64 = 0, lo: UInt64 = 0
    for g in 0..<8 {
        let v: UInt64 = d.int(3) == 0 ? UInt64(d.int(0x10000)) : (d.int(4) == 0 ? UInt64(d.int(16)) : 0)
        if g < 4 { hi |= v << UInt64(48 - 16 * g) } else { lo |= v << UInt64(48 - 16 * (g - 4)) }
    }
    return IPAddress(high: hi, low: lo, isIPv6: true)
}

@Suite("Event JSON encoding")
struct EventJSONTests {
    @Test("the byte encoder writes exactly what the String encoder wrote, for 20000 varied events")
    func sameAsReference() {
        var d = Draw(state: 7)
        for _ in 0..<20000 {
            var e = StateEvent(kind: d.bool() ? .webLink : .serverName, timestampNanoseconds: d.next() >> UInt64(d.int(50)),
                               device: address(&d), client: address(&d), clientPort: UInt16(d.int(65536)),
                               server: address(&d), serverPort: UInt16(d.int(65536)),
                               vlans: (0..<d.int(3)).map { _ in UInt16(d.int(4096)) },
                               teid: d.bool() ? UInt32(truncatingIfNeeded: d.next()) : nil)
            if d.bool() { e.method = d.pick(texts) }
            if d.bool() { e.url = d.pick(texts) }
            if d.bool() { e.host = d.pick(texts) }
            if d.bool() { e.httpVersion = d.pick(texts) }
            if d.bool() { e.status = d.pick([200, 304, 404, 0, -1, Int.max, Int.min]) }
            for (header, _, _) in StateEvent.responseFields where d.bool() { e.responseHeaders[header] = d.pick(texts) }
            if d.bool() { e.responseHeaders["x-other"] = d.pick(texts) }
            if d.bool() { e.cacheable = d.bool() }
            if d.bool() { e.proxy = d.pick(texts) }
            e.transport = d.pick(["tls", "quic", "", "\""])
            if d.bool() { e.serverName = d.pick(texts) }
            e.alpn = (0..<d.int(3)).map { _ in d.pick(texts) }
            e.tlsVersions = (0..<d.int(4)).map { _ in d.pick([0x0304, 0x0303, 0x0302, 0x0301, 0x0300, 0x7f1c, 0x7f00, 0x0a0a, 0xfafa]) }
            if d.bool() { e.quicVersion = d.pick([1, 0x6b33_43cf, 0xff00_001d, 0, UInt32.max]) }
            e.dcid = (0..<d.int(21)).map { _ in UInt8(d.int(256)) }
            e.encryptedClientHello = d.bool()
            let expected = referenceJSONLine(e)
            #expect(e.jsonLine() == expected)
            var bytes: [UInt8] = [0x41]  // appends after what the buffer holds
            e.appendJSON(to: &bytes)
            #expect(bytes == [0x41] + Array(expected.utf8))
        }
    }

    @Test("numbers in header values are read as Int(_:) reads them", arguments: texts)
    func decimalLikeInt(_ text: String) {
        #expect(decimalInt(text) == Int(text.trimmingSpaces()))
    }
}
