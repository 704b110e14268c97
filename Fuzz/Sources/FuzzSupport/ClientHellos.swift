/// TLS ClientHellos built in code, for the TLS and QUIC seeds.
public enum ClientHellos {
    /// A ClientHello handshake message (type 1, 3-byte length) with the given extensions ((type, body) pairs).
    public static func message(_ extensions: [(UInt16, [UInt8])], sessionID: [UInt8] = [],
                               cipherSuites: [UInt16] = [0x1301, 0x1302, 0xc02f]) -> [UInt8] {
        body(extensions, sessionID: sessionID, cipherSuites: cipherSuites).withHandshakeHeader
    }

    /// The body of a ClientHello: legacy_version, random, session id, cipher suites, compression, extensions.
    public static func body(_ extensions: [(UInt16, [UInt8])], sessionID: [UInt8] = [],
                            cipherSuites: [UInt16] = [0x1301, 0x1302, 0xc02f]) -> [UInt8] {
        var b: [UInt8] = [3, 3] + [UInt8](repeating: 0xab, count: 32) + [UInt8(sessionID.count)] + sessionID
        b += be16(cipherSuites.count * 2) + cipherSuites.flatMap(be16) + [1, 0]
        let ext = extensions.flatMap { be16(Int($0.0)) + be16($0.1.count) + $0.1 }
        return b + be16(ext.count) + ext
    }

    public static func sni(_ name: String) -> (UInt16, [UInt8]) {
        let n = Array(name.utf8)
        let entry: [UInt8] = [0] + be16(n.count) + n
        return (0, be16(entry.count) + entry)
    }

    public static func alpn(_ names: [String]) -> (UInt16, [UInt8]) {
        let list = names.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
        return (16, be16(list.count) + list)
    }

    /// supported_versions with a GREASE value first, as browsers send it.
    public static let supportedVersions: (UInt16, [UInt8]) = (43, [6, 0x3a, 0x3a, 0x03, 0x04, 0x03, 0x03])
    public static let ech: (UInt16, [UInt8]) = (0xfe0d, [0, 0, 1, 0, 1, 7, 0, 0x20] + [UInt8](repeating: 7, count: 32))
    public static let esni: (UInt16, [UInt8]) = (0xffce, [1, 2, 3])
    /// key_share with an X25519 share (as the extension most hellos carry after SNI).
    public static let keyShare: (UInt16, [UInt8]) =
        (51, be16(36) + [0, 0x1d] + be16(32) + [UInt8](repeating: 9, count: 32))

    /// `message` in TLS handshake records of at most `recordSize` bytes each.
    public static func records(_ message: [UInt8], recordSize: Int = 16384) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        repeat {
            let n = min(recordSize, message.count - i)
            out += [22, 3, 1] + be16(n) + message[i..<i + n]
            i += n
        } while i < message.count
        return out
    }

    static func be16(_ n: Int) -> [UInt8] { [UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] }
    static func be16(_ n: UInt16) -> [UInt8] { be16(Int(n)) }
}

extension Array where Element == UInt8 {
    /// A ClientHello body with its handshake header (type 1, 24-bit length).
    public var withHandshakeHeader: [UInt8] { [1] + bigEndian(UInt64(count), count: 3) + self }
}
