import Crypto
import CryptoExtras
import Extract
import FuzzSupport

/// Builds a client Initial as a client protects it (RFC 9001 §5): AES-128-GCM over the payload with the Initial
/// keys of the DCID, then header protection with the AES block of a ciphertext sample. What the parser gets back
/// from it must be exactly what went in.
struct InitialBuilder {
    var version: UInt32 = 1
    var dcid: [UInt8] = []
    var scid: [UInt8] = []
    var token: [UInt8] = []
    /// 1 to 4 bytes on the wire.
    var packetNumberLength = 4
    /// The packet number as sent (truncated to `packetNumberLength` bytes).
    var packetNumber: UInt32 = 0
    /// Bytes of the Length field's varint: 2, 4 or 8.
    var lengthFieldSize = 2

    /// The packet number the parser reads back.
    var truncatedPacketNumber: UInt64 {
        UInt64(packetNumber) & (packetNumberLength == 4 ? 0xffff_ffff : (1 << (8 * UInt64(packetNumberLength))) - 1)
    }

    /// The payload padded (PADDING frames, zeros) to what header protection needs: a 16-byte sample starting 4
    /// bytes after the packet number.
    func padded(_ payload: [UInt8]) -> [UInt8] {
        payload + [UInt8](repeating: 0, count: max(0, 4 - packetNumberLength - payload.count, 1 - payload.count))
    }

    /// The protected packet carrying `padded(payload)`.
    func protect(_ payload: [UInt8]) -> [UInt8] {
        let plain = padded(payload)
        let keys = QUICInitialKeys(version: QUICVersionInfo.lookup(version)!, dcid: dcid)
        let initialType: UInt8 = version == RFCInitial.version2 ? 1 : 0
        var header: [UInt8] = [0xc0 | initialType << 4 | UInt8(packetNumberLength - 1)]
        header += bigEndian(UInt64(version), count: 4)
        header += [UInt8(dcid.count)] + dcid + [UInt8(scid.count)] + scid
        header += varint(UInt64(token.count)) + token
        header += varint(UInt64(packetNumberLength + plain.count + 16), size: lengthFieldSize)
        let pnOffset = header.count
        header += bigEndian(truncatedPacketNumber, count: packetNumberLength)

        var nonce = keys.iv
        for i in 0..<8 { nonce[11 - i] ^= UInt8(truncatingIfNeeded: truncatedPacketNumber >> (8 * UInt64(i))) }
        let sealed = try! AES.GCM.seal(plain, using: keys.key, nonce: AES.GCM.Nonce(data: nonce),
                                       authenticating: header)
        var packet = header + Array(sealed.ciphertext) + Array(sealed.tag)

        var mask = Array(packet[pnOffset + 4..<pnOffset + 20])
        try! AES.permute(&mask, key: keys.hp)
        packet[0] ^= mask[0] & 0x0f
        for i in 0..<packetNumberLength { packet[pnOffset + i] ^= mask[1 + i] }
        return packet
    }

    /// A long-header packet of another type (Handshake) with `length` bytes of junk, which the parser skips.
    func otherLongHeaderPacket(length: Int) -> [UInt8] {
        let handshakeType: UInt8 = version == RFCInitial.version2 ? 3 : 2
        return [0xc0 | handshakeType << 4] + bigEndian(UInt64(version), count: 4) + [UInt8(dcid.count)] + dcid
            + [UInt8(scid.count)] + scid + varint(UInt64(length)) + [UInt8](repeating: 0x5a, count: length)
    }
}

/// A QUIC variable-length integer (RFC 9000 §16) in `size` bytes (the smallest that fits when nil).
func varint(_ v: UInt64, size: Int? = nil) -> [UInt8] {
    let n = size ?? (v < 64 ? 1 : v < 16384 ? 2 : v < 1 << 30 ? 4 : 8)
    var bytes = bigEndian(v, count: n)
    bytes[0] |= UInt8([1: 0, 2: 1, 4: 2, 8: 3][n]!) << 6
    return bytes
}

/// A CRYPTO frame (type 6).
func cryptoFrame(offset: Int, _ data: ArraySlice<UInt8>) -> [UInt8] {
    [6] + varint(UInt64(offset)) + varint(UInt64(data.count)) + data
}
