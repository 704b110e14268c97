import Extract
import StatetapTestSupport
import Testing

private func bytes(_ s: String) -> [UInt8] { hex(s.filter { !$0.isWhitespace }) }

@Suite("QUIC Initial decryption (RFC 9001, RFC 9369)")
struct QUICInitialTests {
    @Test("keys derived from the DCID equal the RFC's", arguments: initialVectors)
    func keys(_ v: InitialVector) throws {
        let info = try #require(QUICVersionInfo.lookup(v.version))
        let keys = QUICInitialKeys(version: info, dcid: dcid)
        #expect(keys.clientSecret == bytes(v.clientSecretHex))
        #expect(keys.keyBytes == bytes(v.keyHex))
        #expect(keys.iv == bytes(v.ivHex))
        #expect(keys.hpBytes == bytes(v.hpHex))
    }

    @Test("the protected packet decrypts to the RFC's payload and its ClientHello", arguments: initialVectors)
    func decrypt(_ v: InitialVector) throws {
        let packet = bytes(v.protectedHex)
        #expect(packet.count == 1200)
        guard case .initials(let initials) = QUICInitialParser.parse(packet) else {
            Issue.record("not decrypted: \(QUICInitialParser.parse(packet))")
            return
        }
        let p = try #require(initials.first)
        #expect(initials.count == 1)
        #expect(p.version == v.version)
        #expect(p.dcid == dcid)
        #expect(p.packetNumber == 2)
        // One CRYPTO frame: the RFC payload starts with it (type 6, offset 0, length 0x40f1 = 241).
        let payload = bytes(v.payloadHex)
        #expect(p.crypto.count == 1)
        #expect(p.crypto.first?.offset == 0)
        #expect(p.crypto.first?.data == Array(payload[4..<(4 + 241)]))
        var stream = CryptoStreamAssembler()
        let completed = stream.add(offset: 0, data: p.crypto[0].data)
        let hello = try #require(completed)
        let info = try hello.withUnsafeBytes { try ClientHelloParser.parse($0) }
        #expect(info.serverName == "example.com")
        #expect(info.alpn == ["alpn"])
        #expect(info.supportedVersions == [0x0304])
    }

    @Test("the test support's Initial builder gives the RFC's protected packet from its payload", arguments: initialVectors)
    func builder(_ v: InitialVector) {
        let built = QUICProtect.initial(version: v.version, dcid: dcid, scid: [], packetNumber: 2, payload: bytes(v.payloadHex))
        #expect(built == v.protectedPacket)
    }

    @Test("a flipped ciphertext bit fails authentication; a changed DCID fails too", arguments: initialVectors)
    func tamper(_ v: InitialVector) {
        var packet = bytes(v.protectedHex)
        packet[600] ^= 0x01
        guard case .invalid = QUICInitialParser.parse(packet) else {
            Issue.record("a tampered packet must not decrypt")
            return
        }
        var other = bytes(v.protectedHex)
        other[6] ^= 0xff  // first DCID byte: other keys
        guard case .invalid = QUICInitialParser.parse(other) else {
            Issue.record("wrong keys must not decrypt")
            return
        }
    }

    @Test("versions: v1, v2, drafts 23-34 decrypt; Google QUIC and unknown versions are recognized, not parsed")
    func versions() {
        for v: UInt32 in [1, 0x6b33_43cf, 0xff00_0017, 0xff00_001d, 0xff00_0020, 0xff00_0021, 0xff00_0022] {
            #expect(QUICVersionInfo.lookup(v) != nil, "0x\(String(v, radix: 16))")
        }
        for v: UInt32 in [0x5130_3436 /* Q046 */, 0xface_b001, 0x0a0a_0a0a, 0xff00_0016] {
            #expect(QUICVersionInfo.lookup(v) == nil, "0x\(String(v, radix: 16))")
        }
        // A gQUIC Q046 long header: recognized as an unsupported version, no ClientHello guessed from it.
        var q046: [UInt8] = [0xc3, 0x51, 0x30, 0x34, 0x36, 0x50] + [UInt8](repeating: 7, count: 8) + [UInt8](repeating: 0, count: 1200)
        q046[5] = 0x50
        guard case .unsupportedVersion(0x5130_3436) = QUICInitialParser.parse(q046) else {
            Issue.record("Q046 must be reported as an unsupported version")
            return
        }
        // Version negotiation (version 0).
        guard case .noInitial = QUICInitialParser.parse([0x80, 0, 0, 0, 0, 8] + [UInt8](repeating: 1, count: 8) + [0, 0, 0, 0, 1]) else {
            Issue.record("version negotiation carries no Initial")
            return
        }
    }

    @Test("CRYPTO frames reassemble out of order across packets, first copy wins, bounded")
    func cryptoReassembly() throws {
        let payload = bytes(initialVectors[0].payloadHex)
        let hello = Array(payload[4..<(4 + 241)])
        var s = CryptoStreamAssembler()
        #expect(s.add(offset: 100, data: Array(hello[100...])) == nil)
        #expect(s.add(offset: 50, data: Array(hello[50..<120])) == nil)
        #expect(s.add(offset: 0, data: Array(hello[0..<50])) == hello)
        #expect(s.finished)
        var small = CryptoStreamAssembler(limit: 64)
        #expect(small.add(offset: 0, data: hello) == nil, "a ClientHello larger than the limit is given up")
    }
}
