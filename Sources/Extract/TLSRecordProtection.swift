import Crypto

// TLS record protection from logged secrets: the TLS 1.3 key schedule's last steps (RFC 8446 §7.1, §7.2, §7.3:
// HKDF-Expand-Label for key and IV, "traffic upd" for KeyUpdate), the TLS 1.2 PRF and key block (RFC 5246 §5,
// §6.3), and opening AEAD records (AES-GCM, RFC 5288; ChaCha20-Poly1305, RFC 7905; TLS 1.3 §5.2-5.4). With
// swift-crypto. A record that fails authentication throws: its connection is given up, never a trap.

/// The AEAD cipher suites the tap decrypts, from the ServerHello.
public struct TLSCipherSuite: Sendable, Equatable {
    public enum AEAD: Sendable, Equatable { case aes128GCM, aes256GCM, chaCha20Poly1305 }
    public enum Hash: Sendable, Equatable { case sha256, sha384 }
    public let id: UInt16
    public let aead: AEAD
    public let hash: Hash
    /// A TLS 1.3 suite (the others are TLS 1.2 suites).
    public let tls13: Bool

    public var keyLength: Int { aead == .aes128GCM ? 16 : 32 }
    public var hashLength: Int { hash == .sha256 ? 32 : 48 }

    /// nil for a suite the tap does not decrypt (CBC, RC4, PSK-only…): counted, the connection keeps its server name.
    public init?(id: UInt16) {
        self.id = id
        switch id {
        case 0x1301: (aead, hash, tls13) = (.aes128GCM, .sha256, true)
        case 0x1302: (aead, hash, tls13) = (.aes256GCM, .sha384, true)
        case 0x1303: (aead, hash, tls13) = (.chaCha20Poly1305, .sha256, true)
        // ECDHE-ECDSA / ECDHE-RSA / DHE-RSA / RSA with AES-GCM (RFC 5288, 5289)
        case 0xC02B, 0xC02F, 0x009E, 0x009C: (aead, hash, tls13) = (.aes128GCM, .sha256, false)
        case 0xC02C, 0xC030, 0x009F, 0x009D: (aead, hash, tls13) = (.aes256GCM, .sha384, false)
        // ECDHE-RSA / ECDHE-ECDSA / DHE-RSA with ChaCha20-Poly1305 (RFC 7905)
        case 0xCCA8, 0xCCA9, 0xCCAA: (aead, hash, tls13) = (.chaCha20Poly1305, .sha256, false)
        default: return nil
        }
    }
}

public enum TLSKeySchedule {
    /// HKDF-Expand-Label(secret, label, context, length) with the suite's hash (RFC 8446 §7.1).
    public static func expandLabel(_ hash: TLSCipherSuite.Hash, secret: [UInt8], label: String,
                                   context: [UInt8] = [], length: Int) -> [UInt8]
    {
        let full = Array("tls13 \(label)".utf8)
        var info: [UInt8] = [UInt8(length >> 8), UInt8(length & 0xff), UInt8(full.count)]
        info += full
        info.append(UInt8(context.count))
        info += context
        let prk = SymmetricKey(data: secret)
        switch hash {
        case .sha256: return HKDF<SHA256>.expand(pseudoRandomKey: prk, info: info, outputByteCount: length).withUnsafeBytes { Array($0) }
        case .sha384: return HKDF<SHA384>.expand(pseudoRandomKey: prk, info: info, outputByteCount: length).withUnsafeBytes { Array($0) }
        }
    }

    /// The next application traffic secret after a KeyUpdate (RFC 8446 §7.2).
    public static func nextTrafficSecret(_ hash: TLSCipherSuite.Hash, _ secret: [UInt8]) -> [UInt8] {
        expandLabel(hash, secret: secret, label: "traffic upd", length: secret.count)
    }

    /// The TLS 1.2 PRF: P_hash(secret, label || seed) (RFC 5246 §5).
    public static func prf(_ hash: TLSCipherSuite.Hash, secret: [UInt8], label: String, seed: [UInt8],
                           length: Int) -> [UInt8]
    {
        switch hash {
        case .sha256: return pHash(SHA256.self, secret, Array(label.utf8) + seed, length)
        case .sha384: return pHash(SHA384.self, secret, Array(label.utf8) + seed, length)
        }
    }

    private static func pHash<H: HashFunction>(_: H.Type, _ secret: [UInt8], _ seed: [UInt8], _ n: Int) -> [UInt8] {
        let key = SymmetricKey(data: secret)
        var a = seed
        var out: [UInt8] = []
        out.reserveCapacity(n + H.Digest.byteCount)
        while out.count < n {
            a = Array(HMAC<H>.authenticationCode(for: a, using: key))
            out += HMAC<H>.authenticationCode(for: a + seed, using: key)
        }
        return Array(out.prefix(n))
    }
}

/// Opens the records one side of a connection sends, in order.
public struct TLSRecordProtection: Sendable {
    public enum Failure: Error, Equatable, Sendable {
        /// The record's tag did not verify: wrong key, wrong sequence number, or damaged bytes.
        case authentication
        /// Shorter than its nonce and tag.
        case tooShort
    }

    private enum Mode: Sendable { case tls13, tls12GCM, tls12ChaCha }
    private let mode: Mode
    private let suite: TLSCipherSuite
    private var key: SymmetricKey
    /// TLS 1.3 and ChaCha: the 12-byte IV; TLS 1.2 GCM: the 4-byte salt.
    private var iv: [UInt8]
    /// TLS 1.3: the traffic secret these keys come from (KeyUpdate derives the next).
    private var secret: [UInt8]
    /// The next record's sequence number.
    public private(set) var sequence: UInt64 = 0

    /// TLS 1.3: keys from a traffic secret (handshake or application); `sequence`: the next record's number.
    public init(tls13 suite: TLSCipherSuite, secret: [UInt8], sequence: UInt64 = 0) {
        self.sequence = sequence
        self.suite = suite
        mode = .tls13
        self.secret = secret
        key = SymmetricKey(data: TLSKeySchedule.expandLabel(suite.hash, secret: secret, label: "key", length: suite.keyLength))
        iv = TLSKeySchedule.expandLabel(suite.hash, secret: secret, label: "iv", length: 12)
    }

    /// TLS 1.2: one side's keys from the master secret (key block: client key, server key, client IV, server IV).
    public init(tls12 suite: TLSCipherSuite, master: [UInt8], clientRandom: [UInt8], serverRandom: [UInt8],
                client: Bool)
    {
        self.suite = suite
        secret = []
        let keyLength = suite.keyLength
        let ivLength = suite.aead == .chaCha20Poly1305 ? 12 : 4
        mode = suite.aead == .chaCha20Poly1305 ? .tls12ChaCha : .tls12GCM
        let block = TLSKeySchedule.prf(suite.hash, secret: master, label: "key expansion",
                                       seed: serverRandom + clientRandom, length: 2 * (keyLength + ivLength))
        let keyAt = client ? 0 : keyLength
        let ivAt = 2 * keyLength + (client ? 0 : ivLength)
        key = SymmetricKey(data: block[keyAt..<keyAt + keyLength])
        iv = Array(block[ivAt..<ivAt + ivLength])
    }

    /// TLS 1.3 KeyUpdate: the sender's next secret; the sequence starts again at 0.
    public mutating func update() {
        guard mode == .tls13 else { return }
        self = TLSRecordProtection(tls13: suite, secret: TLSKeySchedule.nextTrafficSecret(suite.hash, secret))
    }

    /// Opens one record (`header`: its 5 bytes, `body`: the rest). TLS 1.3: the inner plaintext, content type and
    /// padding still at its end (see `TLSRecordProtection.innerType`). TLS 1.2: the plaintext; its type is the
    /// header's. The sequence number advances only when the record verified.
    public mutating func open(header: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) throws(Failure) -> [UInt8] {
        let tagLength = 16
        var nonce = [UInt8](repeating: 0, count: 12)
        let ciphertext: UnsafeRawBufferPointer
        var aad: [UInt8]
        switch mode {
        case .tls13:
            guard body.count >= tagLength + 1 else { throw .tooShort }
            nonce = sequenceNonce()
            ciphertext = UnsafeRawBufferPointer(rebasing: body[..<(body.count - tagLength)])
            aad = Array(header)
        case .tls12GCM:
            guard body.count >= 8 + tagLength else { throw .tooShort }
            for i in 0..<4 { nonce[i] = iv[i] }
            for i in 0..<8 { nonce[4 + i] = body[i] }
            ciphertext = UnsafeRawBufferPointer(rebasing: body[8..<(body.count - tagLength)])
            aad = tls12AAD(header, length: ciphertext.count)
        case .tls12ChaCha:
            guard body.count >= tagLength else { throw .tooShort }
            nonce = sequenceNonce()
            ciphertext = UnsafeRawBufferPointer(rebasing: body[..<(body.count - tagLength)])
            aad = tls12AAD(header, length: ciphertext.count)
        }
        let tag = UnsafeRawBufferPointer(rebasing: body[(body.count - tagLength)...])
        let plain: [UInt8]
        do {
            switch suite.aead {
            case .aes128GCM, .aes256GCM:
                let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonce), ciphertext: ciphertext, tag: tag)
                plain = try AES.GCM.open(box, using: key, authenticating: aad).withUnsafeBytes { Array($0) }
            case .chaCha20Poly1305:
                let box = try ChaChaPoly.SealedBox(nonce: ChaChaPoly.Nonce(data: nonce), ciphertext: ciphertext, tag: tag)
                plain = try ChaChaPoly.open(box, using: key, authenticating: aad).withUnsafeBytes { Array($0) }
            }
        } catch {
            throw .authentication
        }
        sequence &+= 1
        return plain
    }

    /// TLS 1.3: one record carrying `content` of `type`, as a sender writes it (header, ciphertext, tag); what the
    /// tap reads is made this way by the tests and the benchmarks. The sequence number advances.
    public mutating func sealTLS13(type: UInt8, _ content: [UInt8]) -> [UInt8] {
        precondition(mode == .tls13, "sealTLS13 on TLS 1.2 keys")
        let inner = content + [type]
        let length = inner.count + 16
        let header: [UInt8] = [23, 3, 3, UInt8(length >> 8), UInt8(length & 0xff)]
        let nonce = sequenceNonce()
        sequence &+= 1
        // Sealing with a valid key and a 12-byte nonce cannot fail.
        switch suite.aead {
        case .aes128GCM, .aes256GCM:
            let box = try! AES.GCM.seal(inner, using: key, nonce: AES.GCM.Nonce(data: nonce), authenticating: header)
            return header + box.ciphertext + box.tag
        case .chaCha20Poly1305:
            let box = try! ChaChaPoly.seal(inner, using: key, nonce: ChaChaPoly.Nonce(data: nonce), authenticating: header)
            return header + box.ciphertext + box.tag
        }
    }

    /// TLS 1.3 inner plaintext: the content type (the last non-zero byte) and the content's length; nil when it is
    /// all zeros (a protocol error).
    public static func innerType(_ plain: [UInt8]) -> (type: UInt8, length: Int)? {
        var end = plain.count
        while end > 0, plain[end - 1] == 0 { end -= 1 }
        guard end > 0 else { return nil }
        return (plain[end - 1], end - 1)
    }

    private func sequenceNonce() -> [UInt8] {
        var n = iv
        for i in 0..<8 { n[11 - i] ^= UInt8(truncatingIfNeeded: sequence >> (8 * UInt64(i))) }
        return n
    }

    private func tls12AAD(_ header: UnsafeRawBufferPointer, length: Int) -> [UInt8] {
        var aad = [UInt8](repeating: 0, count: 13)
        for i in 0..<8 { aad[7 - i] = UInt8(truncatingIfNeeded: sequence >> (8 * UInt64(i))) }
        aad[8] = header[0]
        aad[9] = header[1]
        aad[10] = header[2]
        aad[11] = UInt8(length >> 8)
        aad[12] = UInt8(length & 0xff)
        return aad
    }
}
