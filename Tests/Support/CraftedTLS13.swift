import Crypto
import Extract
import PacketCraft

/// A TLS 1.3 connection made in code: a ClientHello with a chosen random, a ServerHello (TLS_AES_128_GCM_SHA256),
/// then application records sealed with traffic secrets derived from the random, and the key-log lines that give
/// them (as an edge proxy would log them). The handshake's encrypted flight is left out: the HTTPS reader starts
/// the application phase at the first record that opens under the application secret, as it does when the
/// handshake secrets are not logged.
public struct CraftedTLS13: Sendable {
    public var random: [UInt8]
    /// The ClientHello offers 0-RTT (early_data).
    public var earlyData = false
    public let suite = TLSCipherSuite(id: 0x1301)!

    public init(seed: UInt8) {
        random = (0..<32).map { UInt8(truncatingIfNeeded: Int($0) * 7 + Int(seed)) }
    }

    public var clientSecret: [UInt8] { Array(repeating: random[0] ^ 0x11, count: 32) }
    public var serverSecret: [UInt8] { Array(repeating: random[0] ^ 0x22, count: 32) }
    public var handshakeSecret: [UInt8] { Array(repeating: random[0] ^ 0x33, count: 32) }

    /// The connection's key-log lines (`handshake`: with a CLIENT_HANDSHAKE_TRAFFIC_SECRET too, which opens none of
    /// these records).
    public func keyLog(handshake: Bool = false) -> String {
        func h(_ b: [UInt8]) -> String { b.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }
        var lines = ["CLIENT_TRAFFIC_SECRET_0 \(h(random)) \(h(clientSecret))",
                     "SERVER_TRAFFIC_SECRET_0 \(h(random)) \(h(serverSecret))"]
        if handshake { lines.append("CLIENT_HANDSHAKE_TRAFFIC_SECRET \(h(random)) \(h(handshakeSecret))") }
        return lines.joined(separator: "\n") + "\n"
    }

    public var clientHello: [UInt8] {
        var extensions: [UInt8] = [0x00, 0x2b, 0, 3, 2, 0x03, 0x04]  // supported_versions: TLS 1.3
        if earlyData { extensions += [0x00, 42, 0, 0] }
        let body: [UInt8] = [3, 3] + random + [0, 0, 2, 0x13, 0x01, 1, 0] + Self.be16(extensions.count) + extensions
        return Self.record(22, [1, 0] + Self.be16(body.count) + body)
    }

    public var serverHello: [UInt8] {
        let extensions: [UInt8] = [0x00, 0x2b, 0, 2, 0x03, 0x04]
        let body: [UInt8] = [3, 3] + Array(repeating: 0x5a, count: 32) + [0, 0x13, 0x01, 0] + Self.be16(extensions.count)
            + extensions
        return Self.record(22, [2, 0] + Self.be16(body.count) + body)
    }

    public static func record(_ type: UInt8, _ body: [UInt8]) -> [UInt8] { [type, 3, 3] + be16(body.count) + body }

    /// HTTP/1.1 inside TLS: one request and its response (`earlyRecords`: 0-RTT records, half before and half after
    /// the ServerHello, under a key the tap does not have; `responseBody`: bytes of body after the headers).
    public func http1(path: String, earlyRecords: Int = 0, responseBody: Int = 0) -> [TCPConversation.Step] {
        var early = TLSRecordProtection(tls13: suite, secret: Array(repeating: 0x99, count: 32))
        var steps: [TCPConversation.Step] = [.client(clientHello)]
        for _ in 0..<(earlyRecords + 1) / 2 { steps.append(.client(early.sealTLS13(type: 23, Array("GET /0rtt HTTP/1.1\r\n\r\n".utf8)))) }
        steps.append(.server(serverHello))
        for _ in 0..<earlyRecords / 2 { steps.append(.client(early.sealTLS13(type: 23, Array("more early".utf8)))) }
        steps.append(.client(Self.record(20, [1])))  // ChangeCipherSpec (compatibility)
        var c = TLSRecordProtection(tls13: suite, secret: clientSecret)
        var s = TLSRecordProtection(tls13: suite, secret: serverSecret)
        steps.append(.client(c.sealTLS13(type: 23, Array("GET \(path) HTTP/1.1\r\nHost: tls.example\r\n\r\n".utf8))))
        let head = "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: \(responseBody)\r\n\r\n"
        steps += Self.sealed(&s, Array(head.utf8) + Array(repeating: 0x61, count: responseBody)).map { .server($0) }
        return steps
    }

    /// HTTP/2 inside TLS: `paths` requested on streams 1, 3, 5…, each answered 200 with `Cache-Control` and a body
    /// of `responseBody` bytes in DATA frames of at most 16 KB. Header blocks use the static table only.
    public func h2(authority: String, paths: [String], responseBody: Int) -> [TCPConversation.Step] {
        var c = TLSRecordProtection(tls13: suite, secret: clientSecret)
        var s = TLSRecordProtection(tls13: suite, secret: serverSecret)
        var client: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + Self.frame(0x4, 0, 0, [])
        var server: [UInt8] = Self.frame(0x4, 0, 0, [])
        for (i, path) in paths.enumerated() {
            let stream = UInt32(2 * i + 1)
            // :method GET, :scheme https, :path (literal, name 4), :authority (literal, name 1).
            let request: [UInt8] = [0x82, 0x87] + Self.literal(4, path) + Self.literal(1, authority)
            client += Self.frame(0x1, 0x4 | 0x1, stream, request)
            // :status 200, cache-control (literal, name 24: 0x0f 0x09).
            let response: [UInt8] = [0x88, 0x0f, 0x09] + Self.string("public, max-age=600")
            server += Self.frame(0x1, 0x4, stream, response)
            var left = responseBody
            while left > 0 {
                let n = min(left, 16384)
                left -= n
                server += Self.frame(0x0, left == 0 ? 0x1 : 0, stream, Array(repeating: 0x62, count: n))
            }
        }
        var steps: [TCPConversation.Step] = [.client(clientHello), .server(serverHello), .client(Self.record(20, [1]))]
        steps += Self.sealed(&c, client).map { .client($0) }
        steps += Self.sealed(&s, server).map { .server($0) }
        return steps
    }

    /// `bytes` in application-data records of at most 16 KB of plaintext.
    static func sealed(_ p: inout TLSRecordProtection, _ bytes: [UInt8]) -> [[UInt8]] {
        stride(from: 0, to: bytes.count, by: 16384).map { p.sealTLS13(type: 23, Array(bytes[$0..<min($0 + 16384, bytes.count)])) }
    }

    static func frame(_ type: UInt8, _ flags: UInt8, _ stream: UInt32, _ payload: [UInt8]) -> [UInt8] {
        [UInt8(payload.count >> 16), UInt8(payload.count >> 8 & 0xff), UInt8(payload.count & 0xff), type, flags,
         UInt8(stream >> 24), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)] + payload
    }

    /// A literal field without indexing, the name from the static table (`index` < 15), the value without Huffman.
    static func literal(_ index: UInt8, _ value: String) -> [UInt8] { [index] + string(value) }

    static func string(_ s: String) -> [UInt8] {
        let b = Array(s.utf8)
        precondition(b.count < 127, "a short value only")
        return [UInt8(b.count)] + b
    }

    static func be16(_ n: Int) -> [UInt8] { [UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] }
}

/// The decryption ceiling the HTTPS benchmark compares against: every application-data record of `steps` opened
/// with swift-crypto's AES-128-GCM directly (keys derived once, a nonce per record), nothing else. Returns the
/// plaintext bytes.
public func openRecordsReference(_ steps: [TCPConversation.Step], clientKey: SymmetricKey, clientIV: [UInt8],
                                 serverKey: SymmetricKey, serverIV: [UInt8]) -> Int
{
    var total = 0
    var sequence: [Bool: UInt64] = [true: 0, false: 0]
    for step in steps {
        let (fromClient, r): (Bool, [UInt8]) = switch step {
        case .client(let d): (true, d)
        case .server(let d): (false, d)
        }
        guard r.count > 5 + 16, r[0] == 23 else { continue }
        let seq = sequence[fromClient]!
        sequence[fromClient] = seq + 1
        var nonce = fromClient ? clientIV : serverIV
        for i in 0..<8 { nonce[11 - i] ^= UInt8(truncatingIfNeeded: seq >> (8 * UInt64(i))) }
        guard let box = try? AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonce), ciphertext: r[5..<(r.count - 16)],
                                               tag: r[(r.count - 16)...]),
              let plain = try? AES.GCM.open(box, using: fromClient ? clientKey : serverKey, authenticating: r[0..<5])
        else { continue }
        total += plain.count
    }
    return total
}
