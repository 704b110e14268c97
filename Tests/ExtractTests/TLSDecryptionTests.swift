import Crypto
import Extract
import Testing

private func bytes(_ s: String) -> [UInt8] { hex(s.filter { !$0.isWhitespace }) }

/// RFC 8448 §3 "Simple 1-RTT Handshake" (TLS_AES_128_GCM_SHA256).
private enum RFC8448 {
    static let clientRandom = "cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7"
    static let clientHandshake = "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21"
    static let serverHandshake = "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38"
    static let clientTraffic = "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5"
    static let serverTraffic = "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643"
    /// The client's application_data record (client application key, sequence 0).
    static let clientRecord = """
        1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd54a9a20441e2b62974e1f5\
        a6292a2977014bd1e3deae63aeebb21694915e4
        """
    /// The server's application_data record (server application key, sequence 1: 0 was its NewSessionTicket).
    static let serverRecord = """
        17030300432e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36e30efaf97d90e6dffc602dcb501a59a8fcc49c4bf\
        2e5f0a21c0047c2abf332540dd032e167c2955d
        """
    /// The client's close_notify alert (client application key, sequence 1).
    static let clientAlert = "1703030013c9872760655666b74d7ff1153efd6db6d0b0e3"
}

private func open(_ p: inout TLSRecordProtection, _ record: [UInt8]) throws -> [UInt8] {
    var copy = p
    defer { p = copy }
    return try record.withUnsafeBytes { raw in
        try copy.open(header: UnsafeRawBufferPointer(rebasing: raw[0..<5]), body: UnsafeRawBufferPointer(rebasing: raw[5...]))
    }
}

@Suite("TLS record protection from logged secrets (RFC 8446, RFC 8448, RFC 5246)")
struct TLSDecryptionTests {
    let suite = TLSCipherSuite(id: 0x1301)!

    @Test("RFC 8448: key and IV from each traffic secret")
    func keysAndIVs() {
        let cases: [(String, String, String)] = [
            (RFC8448.clientHandshake, "dbfaa693d1762c5b666af5d950258d01", "5bd3c71b836e0b76bb73265f"),
            (RFC8448.serverHandshake, "3fce516009c21727d0f2e4e86ee403bc", "5d313eb2671276ee13000b30"),
            (RFC8448.clientTraffic, "17422dda596ed5d9acd890e3c63f5051", "5b78923dee08579033e523d9"),
            (RFC8448.serverTraffic, "9f02283b6c9c07efc26bb9f2ac92e356", "cf782b88dd83549aadf1e984"),
        ]
        for (secret, key, iv) in cases {
            #expect(TLSKeySchedule.expandLabel(.sha256, secret: bytes(secret), label: "key", length: 16) == bytes(key))
            #expect(TLSKeySchedule.expandLabel(.sha256, secret: bytes(secret), label: "iv", length: 12) == bytes(iv))
        }
    }

    @Test("RFC 8448: the client's and the server's application records open to the RFC's plaintext")
    func applicationRecords() throws {
        let expected = Array(0..<50).map { UInt8($0) }
        var client = TLSRecordProtection(tls13: suite, secret: bytes(RFC8448.clientTraffic))
        let c = try open(&client, bytes(RFC8448.clientRecord))
        let (ct, cn) = try #require(TLSRecordProtection.innerType(c))
        #expect(ct == 23)
        #expect(Array(c[0..<cn]) == expected)
        #expect(client.sequence == 1)
        // The close_notify alert is the client's next record.
        let alert = try open(&client, bytes(RFC8448.clientAlert))
        let (at, an) = try #require(TLSRecordProtection.innerType(alert))
        #expect(at == 21)
        #expect(Array(alert[0..<an]) == [1, 0])

        var server = TLSRecordProtection(tls13: suite, secret: bytes(RFC8448.serverTraffic), sequence: 1)
        let s = try open(&server, bytes(RFC8448.serverRecord))
        let (st, sn) = try #require(TLSRecordProtection.innerType(s))
        #expect(st == 23)
        #expect(Array(s[0..<sn]) == expected)
    }

    @Test("a wrong key, a wrong sequence number or a changed byte fails authentication and does not advance")
    func failures() {
        var wrongKey = TLSRecordProtection(tls13: suite, secret: bytes(RFC8448.serverTraffic))
        #expect(throws: TLSRecordProtection.Failure.authentication) { try open(&wrongKey, bytes(RFC8448.clientRecord)) }
        #expect(wrongKey.sequence == 0)
        var wrongSequence = TLSRecordProtection(tls13: suite, secret: bytes(RFC8448.serverTraffic), sequence: 0)
        #expect(throws: TLSRecordProtection.Failure.authentication) { try open(&wrongSequence, bytes(RFC8448.serverRecord)) }
        var damaged = bytes(RFC8448.clientRecord)
        damaged[20] ^= 1
        var client = TLSRecordProtection(tls13: suite, secret: bytes(RFC8448.clientTraffic))
        #expect(throws: TLSRecordProtection.Failure.authentication) { try open(&client, damaged) }
        #expect(throws: TLSRecordProtection.Failure.tooShort) { try open(&client, [23, 3, 3, 0, 4, 1, 2, 3, 4]) }
    }

    @Test("KeyUpdate: the next secret is HKDF-Expand-Label(secret, \"traffic upd\") and the sequence restarts")
    func keyUpdate() throws {
        // Computed independently with Python's cryptography (HKDFExpand, SHA-256) from RFC 8448's client secret.
        let next = TLSKeySchedule.nextTrafficSecret(.sha256, bytes(RFC8448.clientTraffic))
        #expect(next == bytes("fcdfcc72725aaee48bf64e4fd8b749cdbdbab39d90da0b26e2245ca6ea167207"))
        // A record sealed under the next secret opens after update(), at sequence 0.
        var p = TLSRecordProtection(tls13: suite, secret: bytes(RFC8448.clientTraffic), sequence: 7)
        p.update()
        #expect(p.sequence == 0)
        let key = TLSKeySchedule.expandLabel(.sha256, secret: next, label: "key", length: 16)
        let iv = TLSKeySchedule.expandLabel(.sha256, secret: next, label: "iv", length: 12)
        let header: [UInt8] = [23, 3, 3, 0, 21]
        let sealed = try AES.GCM.seal([0x68, 0x69, 23], using: SymmetricKey(data: key), nonce: AES.GCM.Nonce(data: iv),
                                      authenticating: header)
        let plain = try open(&p, header + Array(sealed.ciphertext) + Array(sealed.tag))
        #expect(plain == [0x68, 0x69, 23])
    }

    @Test("TLS 1.2 PRF: P_SHA256 and P_SHA384 test vectors")
    func prf() {
        let sha256 = TLSKeySchedule.prf(.sha256, secret: bytes("9bbe436ba940f017b17652849a71db35"), label: "test label",
                                        seed: bytes("a0ba9f936cda311827a6f796ffd5198c"), length: 100)
        #expect(sha256 == bytes("""
            e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def\
            17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66
            """))
        let sha384 = TLSKeySchedule.prf(.sha384, secret: bytes("b80b733d6ceefcdc71566ea48e5567df"), label: "test label",
                                        seed: bytes("cd665cf6a8447dd6ff8b27555edb7465"), length: 148)
        #expect(sha384 == bytes("""
            7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cde9ca0faa60be9fe34f82b1233c9146a0e534cb400fed27\
            00884f9dc236f80edd8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d9184259b5bf8cd4d90fa0d31e2dec479e4\
            f1a26066f2eea9a69236a3e52655c9e9aee691c8f3a26854308d5eaa3be85e0990703d73e56f
            """))
    }

    @Test("TLS 1.2: records sealed with the key block's keys open (AES-128-GCM explicit nonce, ChaCha20-Poly1305)")
    func tls12Records() throws {
        let master = Array(repeating: UInt8(0x4d), count: 48)
        let clientRandom = Array(repeating: UInt8(0xc1), count: 32), serverRandom = Array(repeating: UInt8(0x5e), count: 32)
        let plaintext = Array("GET / HTTP/1.1\r\n\r\n".utf8)
        // ECDHE-RSA-AES128-GCM-SHA256: key block = client key 16 | server key 16 | client salt 4 | server salt 4.
        let gcm = TLSCipherSuite(id: 0xC02F)!
        let block = TLSKeySchedule.prf(.sha256, secret: master, label: "key expansion", seed: serverRandom + clientRandom,
                                       length: 40)
        let explicit: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 9]
        // Sequence 0, type 23, version 3.3, plaintext length.
        let aad: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 23, 3, 3, 0, UInt8(plaintext.count)]
        let sealed = try AES.GCM.seal(plaintext, using: SymmetricKey(data: block[16..<32]),
                                      nonce: AES.GCM.Nonce(data: Array(block[36..<40]) + explicit), authenticating: aad)
        let body = explicit + Array(sealed.ciphertext) + Array(sealed.tag)
        var server = TLSRecordProtection(tls12: gcm, master: master, clientRandom: clientRandom,
                                         serverRandom: serverRandom, client: false)
        #expect(try open(&server, [23, 3, 3, UInt8(body.count >> 8), UInt8(body.count & 0xff)] + body) == plaintext)
        var asClient = TLSRecordProtection(tls12: gcm, master: master, clientRandom: clientRandom,
                                           serverRandom: serverRandom, client: true)
        #expect(throws: TLSRecordProtection.Failure.authentication) {
            try open(&asClient, [23, 3, 3, UInt8(body.count >> 8), UInt8(body.count & 0xff)] + body)
        }

        // ECDHE-RSA-CHACHA20-POLY1305: keys 32 + 32, IVs 12 + 12; nonce = IV xor sequence.
        let chacha = TLSCipherSuite(id: 0xCCA8)!
        let cblock = TLSKeySchedule.prf(.sha256, secret: master, label: "key expansion", seed: serverRandom + clientRandom,
                                        length: 88)
        let csealed = try ChaChaPoly.seal(plaintext, using: SymmetricKey(data: cblock[0..<32]),
                                          nonce: ChaChaPoly.Nonce(data: Array(cblock[64..<76])), authenticating: aad)
        let cbody = Array(csealed.ciphertext) + Array(csealed.tag)
        var client = TLSRecordProtection(tls12: chacha, master: master, clientRandom: clientRandom,
                                         serverRandom: serverRandom, client: true)
        #expect(try open(&client, [23, 3, 3, 0, UInt8(cbody.count)] + cbody) == plaintext)
        #expect(client.sequence == 1)
    }

    @Test("suites: the AEAD ones are known, CBC and others are not")
    func suites() {
        #expect(TLSCipherSuite(id: 0x1302)?.hash == .sha384)
        #expect(TLSCipherSuite(id: 0x1302)?.keyLength == 32)
        #expect(TLSCipherSuite(id: 0x1303)?.aead == .chaCha20Poly1305)
        #expect(TLSCipherSuite(id: 0xC030)?.tls13 == false)
        #expect(TLSCipherSuite(id: 0x002F) == nil)  // TLS_RSA_WITH_AES_128_CBC_SHA
        #expect(TLSCipherSuite(id: 0xC013) == nil)  // ECDHE-RSA-AES128-SHA (CBC)
    }
}

@Suite("TLS key log (SSLKEYLOGFILE) and the key store")
struct TLSKeyLogTests {
    @Test("lines: the five labels read; comments, blanks and other labels ignored; bad lines say why")
    func lines() throws {
        let random = String(repeating: "ab", count: 32)
        let secret32 = String(repeating: "01", count: 32), master = String(repeating: "02", count: 48)
        let line = try #require(try TLSKeyLogLine.parse(Substring("CLIENT_TRAFFIC_SECRET_0 \(random) \(secret32)")))
        #expect(line.label == .clientTrafficSecret0)
        #expect(line.clientRandom == Array(repeating: 0xab, count: 32))
        #expect(try TLSKeyLogLine.parse(Substring("CLIENT_RANDOM \(random.uppercased()) \(master)"))?.secret.count == 48)
        #expect(try TLSKeyLogLine.parse("# a comment") == nil)
        #expect(try TLSKeyLogLine.parse("   ") == nil)
        #expect(try TLSKeyLogLine.parse(Substring("EXPORTER_SECRET \(random) \(secret32)")) == nil)
        #expect(throws: TLSKeyLogLine.Problem.fieldCount(2)) { try TLSKeyLogLine.parse(Substring("CLIENT_RANDOM \(random)")) }
        #expect(throws: TLSKeyLogLine.Problem.unknownLabel("SECRET")) { try TLSKeyLogLine.parse(Substring("SECRET \(random) \(master)")) }
        #expect(throws: TLSKeyLogLine.Problem.badClientRandom) { try TLSKeyLogLine.parse(Substring("CLIENT_RANDOM abcd \(master)")) }
        #expect(throws: TLSKeyLogLine.Problem.badSecret) { try TLSKeyLogLine.parse(Substring("CLIENT_RANDOM \(random) \(secret32)")) }
        #expect(throws: TLSKeyLogLine.Problem.badSecret) { try TLSKeyLogLine.parse(Substring("SERVER_TRAFFIC_SECRET_0 \(random) zz\(secret32)")) }
        // A problem's message never repeats the secret.
        let problem = TLSKeyLogLine.Problem.badSecret
        #expect(!problem.description.contains(secret32))
        // Nor a word in the label's place that is not shaped like a label (a line joined with another's secret).
        #expect(TLSKeyLogLine.Problem.unknownLabel("SECRET").description == "unknown label SECRET")
        for word in [String(secret32.prefix(40)), "AB" + String(secret32.prefix(20)), "ab01", "Client_random"] {
            let message = TLSKeyLogLine.Problem.unknownLabel(word).description
            #expect(!message.contains(word), "\(message)")
        }
    }

    @Test("the store: secrets by client random, never in a description; bounded in count and age, counted")
    func store() {
        final class Clock: @unchecked Sendable { var now: UInt64 = 1_000 }
        let clock = Clock()
        let store = TLSKeyStore(limits: .init(maxConnections: 2, maxAgeNanoseconds: 500), clock: { clock.now })
        func random(_ b: UInt8) -> String { String(repeating: String(format2(b)), count: 32) }
        let secret = String(repeating: "7f", count: 32)
        let g0 = store.generation
        var intake = store.add(text: Substring("""
            CLIENT_HANDSHAKE_TRAFFIC_SECRET \(random(1)) \(secret)
            CLIENT_TRAFFIC_SECRET_0 \(random(1)) \(secret)
            # comment
            not a line
            """))
        #expect(intake.accepted == 2)
        #expect(intake.ignored == 1)
        #expect(intake.rejected == 1)
        #expect(intake.firstProblem?.line == 4)
        #expect(store.generation != g0)
        let s = store.secrets(clientRandom: Array(repeating: 1, count: 32))
        #expect(s?.clientTraffic == Array(repeating: 0x7f, count: 32))
        #expect(s?.serverTraffic == nil)
        #expect(s.map { !String(describing: $0).contains("7f7f") && String(describing: $0).contains("CLIENT_TRAFFIC_SECRET_0") } == true)
        // Full: the oldest goes.
        intake = store.add(text: Substring("SERVER_TRAFFIC_SECRET_0 \(random(2)) \(secret)\nSERVER_TRAFFIC_SECRET_0 \(random(3)) \(secret)"))
        #expect(intake.accepted == 2)
        #expect(store.secrets(clientRandom: Array(repeating: 1, count: 32)) == nil)
        #expect(store.counters.evictedFull == 1)
        // Ended: removed.
        store.remove(clientRandom: Array(repeating: 2, count: 32))
        #expect(store.counters.removedEnded == 1)
        // Too old: expired.
        clock.now += 501
        #expect(store.counters.evictedAge == 1)
        #expect(store.counters.held == 0)
        #expect(store.counters.linesRejected == 1)
    }
}

private func format2(_ b: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
}
