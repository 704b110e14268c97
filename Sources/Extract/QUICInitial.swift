// QUIC client Initial packets: version-independent invariants (RFC 8999), Initial keys from the client's first
// Destination Connection ID (RFC 9001 §5.2, RFC 9369 §3.3.1, drafts 23-34), header protection removal (AES block
// permutation, §5.4), AEAD open (AES-128-GCM), and the CRYPTO frames inside. Cold path: one ClientHello per
// connection; allocations are fine here.
import Crypto
import CryptoExtras

/// What statetap knows about a QUIC version's Initial packets.
public struct QUICVersionInfo: Sendable {
    public let version: UInt32
    let salt: [UInt8]
    /// HKDF labels of the key, iv and header-protection key ("quic key" ... or v2's "quicv2 key" ...).
    let keyLabel: String, ivLabel: String, hpLabel: String
    /// The long-header packet type bits (0x30 of the first byte) that mean Initial: 0 in v1 and drafts, 1 in v2.
    public let initialType: UInt8

    static let saltV1: [UInt8] = hex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
    static let saltV2: [UInt8] = hex("0dede3def700a6db819381be6e269dcbf9bd2ed9")
    static let saltDraft29: [UInt8] = hex("afbfec289993d24c9e9786f19c6111e04390a899")
    static let saltDraft23: [UInt8] = hex("c3eef712c72ebb5a11a7d2432bb46365bef9f502")

    /// nil for versions statetap cannot decrypt (Google QUIC, unknown or private versions).
    public static func lookup(_ version: UInt32) -> QUICVersionInfo? {
        func v1Style(_ salt: [UInt8]) -> QUICVersionInfo {
            QUICVersionInfo(version: version, salt: salt, keyLabel: "quic key", ivLabel: "quic iv", hpLabel: "quic hp",
                            initialType: 0)
        }
        switch version {
        case 0x0000_0001, 0xff00_0021, 0xff00_0022: return v1Style(saltV1)   // v1, drafts 33-34
        case 0xff00_001d...0xff00_0020: return v1Style(saltDraft29)          // drafts 29-32
        case 0xff00_0017...0xff00_001c: return v1Style(saltDraft23)          // drafts 23-28
        case 0x6b33_43cf:
            return QUICVersionInfo(version: version, salt: saltV2, keyLabel: "quicv2 key", ivLabel: "quicv2 iv",
                                   hpLabel: "quicv2 hp", initialType: 1)
        default: return nil
        }
    }
}

/// The client's Initial keys for one Destination Connection ID.
public struct QUICInitialKeys: Sendable {
    public let key: SymmetricKey
    public let iv: [UInt8]
    public let hp: SymmetricKey
    /// For tests: the raw bytes.
    public let keyBytes: [UInt8], hpBytes: [UInt8], clientSecret: [UInt8]

    public init(version: QUICVersionInfo, dcid: [UInt8]) {
        let prk = HKDF<SHA256>.extract(inputKeyMaterial: SymmetricKey(data: dcid), salt: version.salt)
        let secret = expandLabel(prk: SymmetricKey(data: Array(prk.withUnsafeBytes { Array($0) })), "client in", 32)
        let secretKey = SymmetricKey(data: secret)
        clientSecret = secret
        keyBytes = expandLabel(prk: secretKey, version.keyLabel, 16)
        iv = expandLabel(prk: secretKey, version.ivLabel, 12)
        hpBytes = expandLabel(prk: secretKey, version.hpLabel, 16)
        key = SymmetricKey(data: keyBytes)
        hp = SymmetricKey(data: hpBytes)
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
func expandLabel(prk: SymmetricKey, _ label: String, _ length: Int) -> [UInt8] {
    let full = Array("tls13 \(label)".utf8)
    var info: [UInt8] = [UInt8(length >> 8), UInt8(length & 0xff), UInt8(full.count)]
    info += full
    info.append(0)  // context length
    let out = HKDF<SHA256>.expand(pseudoRandomKey: prk, info: info, outputByteCount: length)
    return out.withUnsafeBytes { Array($0) }
}

/// One decrypted client Initial packet.
public struct QUICInitialPacket: Sendable {
    public var version: UInt32
    public var dcid: [UInt8]
    public var scid: [UInt8]
    public var packetNumber: UInt64
    /// CRYPTO frames: (offset in the crypto stream, data).
    public var crypto: [(offset: UInt64, data: [UInt8])]
}

/// What one UDP datagram held.
public enum QUICDatagram: Sendable {
    /// Client Initial packets (coalesced packets of other types are skipped).
    case initials([QUICInitialPacket])
    /// A long-header packet of a version statetap cannot decrypt (Google QUIC `Q0xx`, private versions).
    case unsupportedVersion(UInt32)
    /// Version negotiation (version 0) or Retry: no ClientHello.
    case noInitial
    /// Not QUIC, or an Initial that failed to decrypt.
    case invalid(String)
}

public enum QUICInitialParser {
    /// Parses the long-header packets of a datagram and decrypts the Initials among them. `wants(version, dcid)`
    /// is asked before each Initial is decrypted (key derivation and AEAD are the costly part): false skips it,
    /// e.g. for a connection whose ClientHello is already known.
    public static func parse(_ datagram: [UInt8], wants: (UInt32, [UInt8]) -> Bool = { _, _ in true }) -> QUICDatagram {
        var offset = 0
        var initials: [QUICInitialPacket] = []
        var sawOther = false
        while offset < datagram.count {
            let first = datagram[offset]
            guard first & 0x80 != 0 else { break }  // short header: the rest of the datagram is 1-RTT
            guard datagram.count - offset >= 7 else { return .invalid("long header cut at \(offset)") }
            let version = UInt32(datagram[offset + 1]) << 24 | UInt32(datagram[offset + 2]) << 16
                | UInt32(datagram[offset + 3]) << 8 | UInt32(datagram[offset + 4])
            if version == 0 { return initials.isEmpty ? .noInitial : .initials(initials) }
            guard let info = QUICVersionInfo.lookup(version) else {
                return initials.isEmpty ? .unsupportedVersion(version) : .initials(initials)
            }
            var p = offset + 5
            let dcidLength = Int(datagram[p]); p += 1
            guard dcidLength <= 20, p + dcidLength < datagram.count else { return .invalid("bad DCID length") }
            let dcid = Array(datagram[p..<p + dcidLength]); p += dcidLength
            let scidLength = Int(datagram[p]); p += 1
            guard scidLength <= 20, p + scidLength <= datagram.count else { return .invalid("bad SCID length") }
            let scid = Array(datagram[p..<p + scidLength]); p += scidLength
            let type = (first >> 4) & 0x03
            let isInitial = type == info.initialType
            let isRetry = type == (info.initialType == 0 ? 3 : 0)
            if isRetry { return initials.isEmpty ? .noInitial : .initials(initials) }
            if isInitial {
                guard let (tokenLength, n) = varint(datagram, p) else { return .invalid("token length") }
                p += n + Int(tokenLength)
            }
            guard let (length, n) = varint(datagram, p) else { return .invalid("length") }
            p += n
            let end = p + Int(length)
            guard end <= datagram.count, length >= 20 else { return .invalid("packet length \(length) past the datagram") }
            if isInitial && !wants(version, dcid) {
                sawOther = true
            } else if isInitial {
                guard let packet = decrypt(datagram, start: offset, pnOffset: p, end: end, info: info, dcid: dcid,
                                           scid: scid)
                else { return initials.isEmpty ? .invalid("Initial did not decrypt") : .initials(initials) }
                initials.append(packet)
            } else {
                sawOther = true
            }
            offset = end
        }
        if !initials.isEmpty { return .initials(initials) }
        return sawOther ? .noInitial : .invalid("no long-header packet")
    }

    /// Removes header protection, opens the payload and collects its CRYPTO frames.
    static func decrypt(_ d: [UInt8], start: Int, pnOffset: Int, end: Int, info: QUICVersionInfo, dcid: [UInt8],
                        scid: [UInt8]) -> QUICInitialPacket?
    {
        let keys = QUICInitialKeys(version: info, dcid: dcid)
        guard pnOffset + 4 + 16 <= end else { return nil }
        var mask = Array(d[pnOffset + 4..<pnOffset + 20])
        guard (try? AES.permute(&mask, key: keys.hp)) != nil else { return nil }
        var header = Array(d[start..<pnOffset + 4])
        header[0] ^= mask[0] & 0x0f
        let pnLength = Int(header[0] & 0x03) + 1
        var pn: UInt64 = 0
        let pnAt = pnOffset - start
        for i in 0..<pnLength {
            header[pnAt + i] ^= mask[1 + i]
            pn = pn << 8 | UInt64(header[pnAt + i])
        }
        header.removeLast(4 - pnLength)
        var nonce = keys.iv
        for i in 0..<8 { nonce[11 - i] ^= UInt8(truncatingIfNeeded: pn >> (8 * i)) }
        let payloadStart = pnOffset + pnLength
        guard end - payloadStart > 16,
              let n = try? AES.GCM.Nonce(data: nonce),
              let box = try? AES.GCM.SealedBox(nonce: n, ciphertext: d[payloadStart..<end - 16], tag: d[end - 16..<end]),
              let plain = try? AES.GCM.open(box, using: keys.key, authenticating: header)
        else { return nil }
        let payload = Array(plain)
        return QUICInitialPacket(version: info.version, dcid: dcid, scid: scid, packetNumber: pn,
                                 crypto: cryptoFrames(payload))
    }

    /// The CRYPTO frames of a decrypted Initial payload (PADDING, PING, ACK and CONNECTION_CLOSE are skipped; an
    /// unknown frame type ends the walk).
    public static func cryptoFrames(_ payload: [UInt8]) -> [(offset: UInt64, data: [UInt8])] {
        var out: [(offset: UInt64, data: [UInt8])] = []
        var p = 0
        while p < payload.count {
            guard let (type, n) = varint(payload, p) else { break }
            p += n
            switch type {
            case 0x00, 0x01:  // PADDING, PING
                continue
            case 0x02, 0x03:  // ACK: largest, delay, range count, first range, ranges, [ECN counts]
                var fields = 4
                guard let (_, a) = varint(payload, p) else { return out }
                p += a
                guard let (_, b) = varint(payload, p) else { return out }
                p += b
                guard let (count, c) = varint(payload, p) else { return out }
                p += c
                fields = 1 + 2 * Int(min(count, 1000)) + (type == 0x03 ? 3 : 0)
                for _ in 0..<fields {
                    guard let (_, k) = varint(payload, p) else { return out }
                    p += k
                }
            case 0x06:  // CRYPTO
                guard let (offset, a) = varint(payload, p) else { return out }
                p += a
                guard let (length, b) = varint(payload, p) else { return out }
                p += b
                guard p + Int(length) <= payload.count else { return out }
                out.append((offset, Array(payload[p..<p + Int(length)])))
                p += Int(length)
            case 0x1c:  // CONNECTION_CLOSE: error code, frame type, reason
                for _ in 0..<2 {
                    guard let (_, k) = varint(payload, p) else { return out }
                    p += k
                }
                guard let (length, k) = varint(payload, p) else { return out }
                p += k + Int(length)
            default:
                return out
            }
        }
        return out
    }
}

/// A QUIC variable-length integer at `p`: (value, bytes used), nil when cut.
@inline(__always)
func varint(_ d: [UInt8], _ p: Int) -> (UInt64, Int)? {
    guard p < d.count else { return nil }
    let n = 1 << Int(d[p] >> 6)
    guard p + n <= d.count else { return nil }
    var v = UInt64(d[p] & 0x3f)
    for i in 1..<n { v = v << 8 | UInt64(d[p + i]) }
    return (v, n)
}

/// Bytes from a hex string (constants and tests).
public func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = s.utf8.makeIterator()
    func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : (c | 0x20) - 87 }
    while let a = it.next(), let b = it.next() { out.append(nibble(a) << 4 | nibble(b)) }
    return out
}
