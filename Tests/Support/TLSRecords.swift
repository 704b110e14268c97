/// TLS records built in code for tests.
public enum TLSRecords {
    /// One handshake record holding a TLS 1.2-style ClientHello with a server_name and an ALPN extension.
    public static func clientHello(serverName: String, alpn: [String]) -> [UInt8] {
        let name = Array(serverName.utf8)
        var ext: [UInt8] = [0, 0] + be16(name.count + 5) + be16(name.count + 3) + [0] + be16(name.count) + name
        let protocols = alpn.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
        ext += [0, 16] + be16(protocols.count + 2) + be16(protocols.count) + protocols
        var body: [UInt8] = [3, 3] + [UInt8](repeating: 1, count: 32) + [0, 0, 2, 0x13, 0x01, 1, 0]
        body += be16(ext.count) + ext
        let hello: [UInt8] = [1, 0] + be16(body.count) + body
        return [22, 3, 1] + be16(hello.count) + hello
    }

    private static func be16(_ n: Int) -> [UInt8] { [UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] }
}
