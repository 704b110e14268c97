import Extract
import Testing

/// A ClientHello handshake message with the given extensions ((type, body) pairs).
func clientHello(_ extensions: [(UInt16, [UInt8])]) -> [UInt8] {
    var body: [UInt8] = [0x03, 0x03] + [UInt8](repeating: 0xab, count: 32) + [0]  // version, random, session id
    body += [0, 2, 0x13, 0x01, 1, 0]  // one cipher suite, one compression method
    var ext: [UInt8] = []
    for (t, b) in extensions { ext += [UInt8(t >> 8), UInt8(t & 0xff), UInt8(b.count >> 8), UInt8(b.count & 0xff)] + b }
    body += [UInt8(ext.count >> 8), UInt8(ext.count & 0xff)] + ext
    return [1, 0, UInt8(body.count >> 8), UInt8(body.count & 0xff)] + body
}

func sni(_ name: String) -> (UInt16, [UInt8]) {
    let n = Array(name.utf8)
    let entry: [UInt8] = [0, UInt8(n.count >> 8), UInt8(n.count & 0xff)] + n
    return (0, [UInt8(entry.count >> 8), UInt8(entry.count & 0xff)] + entry)
}

func alpn(_ names: [String]) -> (UInt16, [UInt8]) {
    var list: [UInt8] = []
    for n in names { list += [UInt8(n.utf8.count)] + Array(n.utf8) }
    return (16, [UInt8(list.count >> 8), UInt8(list.count & 0xff)] + list)
}

@Suite("TLS ClientHello")
struct ClientHelloTests {
    @Test("SNI, ALPN, supported_versions without GREASE")
    func fields() throws {
        let m = clientHello([sni("edge.example.net"), alpn(["h2", "http/1.1"]), (43, [6, 0x3a, 0x3a, 0x03, 0x04, 0x03, 0x03])])
        let info = try m.withUnsafeBytes { try ClientHelloParser.parse($0) }
        #expect(info.serverName == "edge.example.net")
        #expect(info.alpn == ["h2", "http/1.1"])
        #expect(info.supportedVersions == [0x0304, 0x0303])
        #expect(info.legacyVersion == 0x0303)
        #expect(!info.encryptedClientHello)
    }

    @Test("no SNI; ECH with its outer name; ESNI")
    func optional() throws {
        let none = try clientHello([alpn(["h3"])]).withUnsafeBytes { try ClientHelloParser.parse($0) }
        #expect(none.serverName == nil && none.alpn == ["h3"])
        let ech = try clientHello([sni("public.example"), (0xfe0d, [0, 1, 2])]).withUnsafeBytes { try ClientHelloParser.parse($0) }
        #expect(ech.encryptedClientHello && ech.serverName == "public.example")
        let esni = try clientHello([(0xffce, [1, 2, 3])]).withUnsafeBytes { try ClientHelloParser.parse($0) }
        #expect(esni.encryptedServerName && esni.serverName == nil)
    }

    @Test("every truncation is an error, never a crash; lies inside the extensions keep what came before")
    func truncations() throws {
        let m = clientHello([sni("a.example"), alpn(["h2"])])
        for n in 0..<m.count {
            let cut = Array(m.prefix(n))
            let r = Result { try cut.withUnsafeBytes { try ClientHelloParser.parse($0) } }
            if case .success = r { Issue.record("a cut message (\(n) of \(m.count) bytes) parsed") }
        }
        // Lengths that lie: the ALPN extension claims more than the block holds; the SNI before it is kept and
        // the hello is flagged (tshark also reports such hellos, from captures cut short).
        var lie = m
        lie[m.count - 7] = 0xff  // the ALPN extension's length, high byte
        let partial = try lie.withUnsafeBytes { try ClientHelloParser.parse($0) }
        #expect(partial.truncated)
        #expect(partial.serverName == "a.example")
        #expect(partial.alpn.isEmpty)
        #expect(throws: ClientHelloError.notClientHello) { try [2, 0, 0, 0].withUnsafeBytes { try ClientHelloParser.parse($0) } }
    }

    @Test("an SSLv2-compatible hello is recognized")
    func sslv2() {
        let v2: [UInt8] = [0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15]
        #expect(v2.withUnsafeBytes { ClientHelloParser.isSSLv2Hello($0) })
        #expect(!clientHello([]).withUnsafeBytes { ClientHelloParser.isSSLv2Hello($0) })
    }
}

@Suite("TLS ClientHello in a TCP stream")
struct TLSStreamTests {
    /// The handshake message in TLS records of at most `recordSize` bytes of payload.
    func records(_ hello: [UInt8], recordSize: Int) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < hello.count {
            let n = min(recordSize, hello.count - i)
            out += [22, 3, 1, UInt8(n >> 8), UInt8(n & 0xff)] + hello[i..<i + n]
            i += n
        }
        return out
    }

    func feedAll(_ c: inout TLSClientHelloCollector, _ bytes: [UInt8], chunk: Int) -> TLSClientHelloCollector.Outcome? {
        var outcome: TLSClientHelloCollector.Outcome?
        var i = 0
        while i < bytes.count, outcome == nil {
            let part = Array(bytes[i..<min(i + chunk, bytes.count)])
            outcome = part.withUnsafeBytes { c.feed($0) }
            i += chunk
        }
        return outcome
    }

    @Test("across records and segments of any size", arguments: [1, 7, 100, 4096])
    func split(chunk: Int) throws {
        let hello = clientHello([sni("split.example"), alpn(["h2"])])
        for recordSize in [16, 50, 16384] {
            var c = TLSClientHelloCollector()
            let outcome = feedAll(&c, records(hello, recordSize: recordSize), chunk: chunk)
            guard case .clientHello(let info) = outcome else {
                Issue.record("record size \(recordSize), chunk \(chunk): \(String(describing: outcome))")
                continue
            }
            #expect(info.serverName == "split.example")
            #expect(c.finished)
        }
    }

    @Test("after an HTTP CONNECT; not TLS; a gap; SSLv2")
    func others() {
        let hello = clientHello([sni("tunnel.example")])
        var c = TLSClientHelloCollector()
        let stream = Array("CONNECT tunnel.example:443 HTTP/1.1\r\nHost: tunnel.example:443\r\n\r\n".utf8) + records(hello, recordSize: 16384)
        guard case .clientHello(let info) = feedAll(&c, stream, chunk: 13) else { Issue.record("CONNECT"); return }
        #expect(info.serverName == "tunnel.example")
        var h = TLSClientHelloCollector()
        #expect(feedAll(&h, Array("GET / HTTP/1.1\r\n\r\n".utf8), chunk: 100) == .gaveUp("not TLS"))
        var g = TLSClientHelloCollector()
        _ = feedAll(&g, Array(records(hello, recordSize: 16384).prefix(20)), chunk: 100)
        #expect(g.gap() != nil && g.finished)
        var v2 = TLSClientHelloCollector()
        guard case .gaveUp = feedAll(&v2, [0x80, 0x2e, 0x01, 0x03, 0x01], chunk: 10) else { Issue.record("SSLv2"); return }
    }
}
