import Decode
import Foundation
import Testing
@testable import Extract

/// The flat event: its fields live in one buffer in the journal's encoding; the typed properties read and write it.
@Suite("Event fields")
struct EventFieldsTests {
    private func event(_ kind: StateEvent.Kind = .webLink) -> StateEvent {
        StateEvent(kind: kind, timestampNanoseconds: 1_700_000_000_123_456_789, device: IPAddress("10.45.0.7")!,
                   client: IPAddress("10.45.0.7")!, clientPort: 40000, server: IPAddress("203.0.113.9")!,
                   serverPort: 80, vlans: [100, 200], teid: 0x1234)
    }

    @Test("every property reads back what was set; setting again replaces, nil removes")
    func properties() {
        var e = event()
        e.method = "GET"
        e.url = "http://img.example/a.jpg"
        e.host = "img.example"
        e.httpVersion = "HTTP/1.1"
        e.status = 200
        e.cacheable = true
        e.proxy = "edge-1"
        e.responseHeaders = ["etag": "\"abc\"", "cache-control": "max-age=60", "x-other": "1"]
        e.transport = "tls"
        e.serverName = "img.example"
        e.alpn = ["h2", "http/1.1"]
        e.tlsVersions = [0x0304, 0x0303]
        e.quicVersion = 0x6b33_43cf
        e.dcid = [1, 2, 3]
        e.encryptedClientHello = true
        #expect(e.method == "GET" && e.url == "http://img.example/a.jpg" && e.host == "img.example")
        #expect(e.httpVersion == "HTTP/1.1" && e.status == 200 && e.cacheable == true && e.proxy == "edge-1")
        #expect(e.responseHeaders == ["etag": "\"abc\"", "cache-control": "max-age=60", "x-other": "1"])
        #expect(e.transport == "tls" && e.serverName == "img.example" && e.alpn == ["h2", "http/1.1"])
        #expect(e.tlsVersions == [0x0304, 0x0303] && e.quicVersion == 0x6b33_43cf && e.dcid == [1, 2, 3])
        #expect(e.encryptedClientHello)

        let before = e.fields.count
        e.url = "http://img.example/b.jpg"
        #expect(e.url == "http://img.example/b.jpg")
        #expect(e.fields.count == before, "replaced, not added")
        e.alpn = ["h3"]
        #expect(e.alpn == ["h3"])
        e.status = nil
        e.cacheable = nil
        e.proxy = nil
        e.encryptedClientHello = false
        e.dcid = []
        e.responseHeaders = [:]
        #expect(e.status == nil && e.cacheable == nil && e.proxy == nil && !e.encryptedClientHello)
        #expect(e.dcid.isEmpty && e.responseHeaders.isEmpty)
        #expect(e.method == "GET" && e.host == "img.example", "other fields stay")
        var count = 0
        e.forEachField { _, _ in count += 1 }
        // method, url, host, version, transport, sni, one alpn, two TLS versions, QUIC version.
        #expect(count == 10)
    }

    @Test("events with the same content are equal whatever order their fields were set in")
    func equalityIgnoresOrder() {
        var a = event(), b = event()
        a.url = "http://x.example/"
        a.host = "x.example"
        a.responseHeaders = ["age": "3", "etag": "\"e\""]
        b.host = "x.example"
        b.responseHeaders = ["etag": "\"e\"", "age": "3"]
        b.url = "http://x.example/"
        #expect(a.fields != b.fields)
        #expect(a == b)
        b.host = "y.example"
        #expect(a != b)
        var c = a
        c.clientPort = 1
        #expect(a != c, "the context counts too")
    }

    @Test("response headers are kept in one order: known names first, whatever the dictionary's order")
    func headerOrder() {
        for _ in 0..<20 {
            var headers: [String: String] = [:]
            for name in ["server", "via", "age", "content-length", "etag", "cache-control"].shuffled() {
                headers[name] = "v-" + name
            }
            var e = event()
            e.responseHeaders = headers
            var names: [String] = []
            e.forEachField { tag, v in
                guard tag == StateEvent.Field.header.rawValue, let h = StateEvent.header(v) else { return }
                names.append(String(decoding: h.name, as: UTF8.self))
            }
            #expect(names == ["cache-control", "etag", "content-length", "age", "via", "server"])
            #expect(e.responseHeaders == headers)
        }
    }

    @Test("a string longer than a field holds is cut where a character starts: the bytes stay UTF-8")
    func longStringsCutWhole() throws {
        var e = event()
        let long = String(repeating: "a", count: 65_534) + "é" + "tail"  // é is 2 bytes: it would straddle 65,535
        e.url = long
        let url = try #require(e.url)
        #expect(url.utf8.count == 65_534)
        #expect(url == String(repeating: "a", count: 65_534))
        e.responseHeaders = ["etag": String(repeating: "€", count: 30_000)]  // 3 bytes each
        let etag = try #require(e.responseHeaders["etag"])
        #expect(etag.utf8.count <= 65_535 - 1 - 4 && etag.utf8.count % 3 == 0)
        #expect(etag.allSatisfy { $0 == "€" })
    }

    @Test("encoded fields are taken only when whole; bytes that are not UTF-8 are repaired in JSON")
    func encodedFields() throws {
        let whole: [UInt8] = [StateEvent.Field.url.rawValue, 3, 0, 0x68, 0xff, 0x69,  // "h", not UTF-8, "i"
                              99, 1, 0, 7]  // a tag this version does not know: kept, skipped
        let e = try #require(whole.withUnsafeBytes {
            StateEvent(kind: .webLink, timestampNanoseconds: 1, device: IPAddress("10.0.0.1")!,
                       client: IPAddress("10.0.0.1")!, clientPort: 1, server: IPAddress("10.0.0.2")!, serverPort: 2,
                       vlans: [], teid: nil, fields: $0)
        })
        #expect(e.fields == whole)
        #expect(e.url == "h\u{FFFD}i")
        let line = e.jsonLine()
        #expect(line.contains("\"url\":\"h\u{FFFD}i\""))
        let parsed = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        #expect(parsed?["url"] as? String == "h\u{FFFD}i")

        for cut in [[UInt8]([17]), [17, 5], [17, 5, 0, 1, 2], [17, 1, 0, 0x61, 18]] {
            let made = cut.withUnsafeBytes {
                StateEvent(kind: .webLink, timestampNanoseconds: 1, device: IPAddress("10.0.0.1")!,
                           client: IPAddress("10.0.0.1")!, clientPort: 1, server: IPAddress("10.0.0.2")!,
                           serverPort: 2, vlans: [], teid: nil, fields: $0)
            }
            #expect(made == nil, "cut fields \(cut) refused")
        }
    }
}
