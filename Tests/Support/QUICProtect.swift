// Builds protected client Initials (RFC 9001 §5): for cases the RFC vectors do not cover, such as the second
// Initial a client sends after Retry, under a new Destination Connection ID and with the Retry's token.
import Crypto
import CryptoExtras
import Extract

public enum QUICProtect {
    /// One client Initial packet: long header (`version`, `dcid`, `scid`, `token`), a 4-byte packet number, the
    /// AEAD-sealed `payload` (frames; PADDING added to fill a 1200-byte datagram) and header protection.
    public static func initial(version: UInt32, dcid: [UInt8], scid: [UInt8], token: [UInt8] = [],
                               packetNumber: UInt32, payload: [UInt8]) -> [UInt8]
    {
        let info = QUICVersionInfo.lookup(version)!
        let keys = QUICInitialKeys(version: info, dcid: dcid)
        func varint(_ v: Int) -> [UInt8] {
            v < 64 ? [UInt8(v)] : [0x40 | UInt8(v >> 8), UInt8(v & 0xff)]  // up to 16383: enough here
        }
        var header: [UInt8] = [0xc0 | info.initialType << 4 | 0x03]
        header += withUnsafeBytes(of: version.bigEndian, Array.init)
        header += [UInt8(dcid.count)] + dcid + [UInt8(scid.count)] + scid
        header += varint(token.count) + token
        // Length covers the packet number, the payload and the tag; pad the payload to fill 1200 bytes.
        let fixed = header.count + 2 + 4 + 16
        var plain = payload
        if fixed + plain.count < 1200 { plain += [UInt8](repeating: 0, count: 1200 - fixed - plain.count) }
        header += [0x40 | UInt8((4 + plain.count + 16) >> 8), UInt8((4 + plain.count + 16) & 0xff)]
        let pnOffset = header.count
        header += withUnsafeBytes(of: packetNumber.bigEndian, Array.init)
        var nonce = keys.iv
        for i in 0..<4 { nonce[11 - i] ^= UInt8(truncatingIfNeeded: packetNumber >> (8 * i)) }
        let box = try! AES.GCM.seal(plain, using: keys.key, nonce: AES.GCM.Nonce(data: nonce), authenticating: header)
        var packet = header + Array(box.ciphertext) + Array(box.tag)
        var mask = Array(packet[pnOffset + 4..<pnOffset + 20])
        try! AES.permute(&mask, key: keys.hp)
        packet[0] ^= mask[0] & 0x0f
        for i in 0..<4 { packet[pnOffset + i] ^= mask[1 + i] }
        return packet
    }

    /// A Retry packet (RFC 9000 §17.2.5; the integrity tag is not checked by a tap, so it is zeros here).
    public static func retry(version: UInt32, dcid: [UInt8], scid: [UInt8], token: [UInt8]) -> [UInt8] {
        let info = QUICVersionInfo.lookup(version)!
        let type: UInt8 = info.initialType == 0 ? 3 : 0
        var p: [UInt8] = [0xc0 | type << 4]
        p += withUnsafeBytes(of: version.bigEndian, Array.init)
        p += [UInt8(dcid.count)] + dcid + [UInt8(scid.count)] + scid + token
        return p + [UInt8](repeating: 0, count: 16)
    }
}
