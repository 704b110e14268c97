// TLS ClientHello parsing (RFC 8446 §4.1.2, RFC 6066 SNI, RFC 7301 ALPN, supported_versions, ECH): the bytes of
// one handshake message, from TLS records over TCP or from QUIC CRYPTO frames. Cold compared with decoding (one
// message per connection), but it allocates only the strings it keeps.

/// What a ClientHello says about the server the client wants.
public struct ClientHelloInfo: Sendable, Equatable {
    /// server_name (host_name), when present.
    public var serverName: String?
    /// application_layer_protocol_negotiation, in the client's order.
    public var alpn: [String] = []
    /// supported_versions, in the client's order (GREASE values left out).
    public var supportedVersions: [UInt16] = []
    /// legacy_version of the ClientHello body (0x0303 for TLS 1.2 and 1.3).
    public var legacyVersion: UInt16 = 0
    /// The client offered Encrypted Client Hello (extension 0xfe0d): `serverName` is then the outer, public name.
    public var encryptedClientHello = false
    /// encrypted_server_name (draft ESNI, 0xffce) was present.
    public var encryptedServerName = false
    /// early_data (42): the client may send 0-RTT data right after this ClientHello (RFC 8446 §4.2.10).
    public var earlyData = false
    /// The extensions were cut or their lengths lied: what is here was read before that point (as tshark does,
    /// the hello still counts).
    public var truncated = false

    public init() {}
}

/// Why a ClientHello could not be read.
public enum ClientHelloError: Error, Equatable, Sendable {
    /// Not a ClientHello (handshake type is not 1).
    case notClientHello
    /// A length field points past the message.
    case malformed(String)
}

public enum ClientHelloParser {
    /// The length of the handshake message starting at `bytes` (4-byte header + body), or nil with fewer than 4 bytes.
    public static func messageLength(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= 4 else { return nil }
        return 4 + (Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3]))
    }

    /// Parses a complete handshake message (type 1, 3-byte length, body).
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(ClientHelloError) -> ClientHelloInfo {
        guard bytes.count >= 4, bytes[0] == 1 else { throw .notClientHello }
        let total = messageLength(bytes)!
        guard total <= bytes.count else { throw .malformed("handshake length \(total - 4) past the \(bytes.count - 4) bytes") }
        var r = Reader(bytes, start: 4, end: total)
        var info = ClientHelloInfo()
        info.legacyVersion = try r.u16()
        try r.skip(32)                         // random
        try r.skip(Int(try r.u8()))            // legacy_session_id
        try r.skip(Int(try r.u16()))           // cipher_suites
        try r.skip(Int(try r.u8()))            // legacy_compression_methods
        guard r.remaining > 0 else { return info }  // no extensions (old clients)
        do throws(ClientHelloError) {
            try readExtensions(&r, into: &info, bytes)
        } catch {
            info.truncated = true
        }
        return info
    }

    /// The extensions block; throws where it stops making sense (the caller keeps what was read).
    private static func readExtensions(_ r: inout Reader, into info: inout ClientHelloInfo,
                                       _ bytes: UnsafeRawBufferPointer) throws(ClientHelloError)
    {
        let extensionsLength = Int(try r.u16())
        let extensionsEnd = r.position + extensionsLength
        guard extensionsEnd <= r.end else {
            info.truncated = true
            // Read what is there: a capture cut inside the extensions still names the server if it got that far.
            return try readExtensionList(&r, end: r.end, into: &info, bytes)
        }
        try readExtensionList(&r, end: extensionsEnd, into: &info, bytes)
    }

    private static func readExtensionList(_ r: inout Reader, end extensionsEnd: Int, into info: inout ClientHelloInfo,
                                          _ bytes: UnsafeRawBufferPointer) throws(ClientHelloError)
    {
        while r.position + 4 <= extensionsEnd {
            let type = try r.u16()
            let length = Int(try r.u16())
            guard r.position + length <= extensionsEnd else { throw .malformed("extension \(type) past the extensions") }
            var e = Reader(bytes, start: r.position, end: r.position + length)
            switch type {
            case 0:  // server_name: list of (type, name)
                if length > 0 {
                    let listLength = Int(try e.u16())
                    let listEnd = e.position + listLength
                    while e.position + 3 <= min(listEnd, e.end) {
                        let nameType = try e.u8()
                        let n = Int(try e.u16())
                        let name = try e.bytes(n)
                        if nameType == 0, info.serverName == nil { info.serverName = String(decoding: name, as: UTF8.self) }
                    }
                }
            case 16:  // ALPN: list of length-prefixed names
                let listLength = Int(try e.u16())
                let listEnd = e.position + listLength
                while e.position < min(listEnd, e.end) {
                    let n = Int(try e.u8())
                    info.alpn.append(String(decoding: try e.bytes(n), as: UTF8.self))
                }
            case 43:  // supported_versions (ClientHello form: 1-byte list length)
                let n = Int(try e.u8()) / 2
                for _ in 0..<n {
                    let v = try e.u16()
                    if v & 0x0f0f != 0x0a0a { info.supportedVersions.append(v) }  // GREASE: 0x?a?a
                }
            case 42:
                info.earlyData = true
            case 0xfe0d:
                info.encryptedClientHello = true
            case 0xffce:
                info.encryptedServerName = true
            default:
                break
            }
            r.position += length
        }
    }

    /// An SSLv2-compatible ClientHello record (RFC 5246 Appendix E.2): 2-byte header with the high bit set, then
    /// message type 1. Such hellos carry no extensions: recognized, and skipped.
    public static func isSSLv2Hello(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 3 && bytes[0] & 0x80 != 0 && bytes[2] == 1
    }
}

/// Bounds-checked big-endian reads over borrowed bytes.
struct Reader {
    let base: UnsafeRawBufferPointer
    var position: Int
    let end: Int

    init(_ base: UnsafeRawBufferPointer, start: Int, end: Int) {
        self.base = base
        position = start
        self.end = min(end, base.count)
    }

    var remaining: Int { end - position }

    mutating func u8() throws(ClientHelloError) -> UInt8 {
        guard position < end else { throw .malformed("truncated at \(position)") }
        defer { position += 1 }
        return base[position]
    }

    mutating func u16() throws(ClientHelloError) -> UInt16 {
        guard position + 2 <= end else { throw .malformed("truncated at \(position)") }
        defer { position += 2 }
        return UInt16(base[position]) << 8 | UInt16(base[position + 1])
    }

    mutating func skip(_ n: Int) throws(ClientHelloError) {
        guard n >= 0, position + n <= end else { throw .malformed("truncated at \(position)") }
        position += n
    }

    mutating func bytes(_ n: Int) throws(ClientHelloError) -> UnsafeRawBufferPointer {
        guard n >= 0, position + n <= end else { throw .malformed("truncated at \(position)") }
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: base[position..<position + n])
    }
}
