import AsyncHTTPClient
import NIOSSL
import Synchronization

/// HTTPS links fetched through the local edge cache's TLS port (`--cache-https`): the connection goes to the
/// cache's address, but the TLS server name (SNI), the certificate check and the Host header are the link's host,
/// as the device's own request had them, so a cache that serves many sites by SNI answers as it answered the
/// device. AsyncHTTPClient takes the server name from the URL, so each link host gets a client whose DNS override
/// maps that host to the cache; bounded in hosts (the least recently used is shut down beyond).
public final class CacheTLSClients: Sendable {
    public let cacheHost: String
    public let cachePort: Int
    private let tls: TLSConfiguration
    private let connectionsPerHost: Int
    private let maxHosts: Int
    private let clients = Mutex<(byHost: [String: HTTPClient], order: [String])>(([:], []))

    /// `cacheURL`: `https://HOST[:PORT]` (443 by default); `caFile`: PEM certificates to trust for the cache.
    public init(cacheURL: String, caFile: String?, connectionsPerHost: Int = 8, maxHosts: Int = 256) throws {
        let parts = URLParts(cacheURL)
        if let problem = parts.problem { throw TLSClientError(message: problem) }
        guard parts.scheme == "https" else { throw TLSClientError(message: "--cache-https takes https://HOST[:PORT], got '\(cacheURL)'") }
        cacheHost = parts.host
        cachePort = parts.port ?? 443
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile {
            _ = try NIOSSLCertificate.fromPEMFile(caFile)  // a clear error now rather than at the first fetch
            tls.additionalTrustRoots = [.file(caFile)]
        }
        self.tls = tls
        self.connectionsPerHost = connectionsPerHost
        self.maxHosts = maxHosts
    }

    public struct TLSClientError: Error, CustomStringConvertible { public let message: String; public var description: String { message } }

    /// Why a link's host cannot be fetched through the cache's TLS port, or nil: only a DNS name (with an optional
    /// port, which the cache's replaces) can be, since the connection must go to the cache whatever the link says.
    /// An IP literal would be connected to as it is (a DNS override maps names only), and anything else in the
    /// authority (`user@`, a path, spaces) could point the URL elsewhere.
    static func hostProblem(_ host: String) -> String? {
        var name = Substring(host)
        if let colon = name.lastIndex(of: ":") {
            let port = name[name.index(after: colon)...]
            guard !port.isEmpty, port.count <= 5, port.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                return "the link's host is not a DNS name (with an optional port)"
            }
            name = name[..<colon]
        }
        if name.hasSuffix(".") { name = name.dropLast() }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        guard !name.isEmpty, name.utf8.count <= 253,
              labels.allSatisfy({ l in
                  !l.isEmpty && l.utf8.count <= 63 && l.first != "-" && l.last != "-"
                      && l.utf8.allSatisfy { $0 == 0x2d || ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7a) }
              })
        else { return "the link's host is not a DNS name (with an optional port)" }
        // A top-level label starts with a letter: one that starts with a digit is an IPv4 literal, or a form a
        // resolver reads as one (0x7f000001, 017700000001).
        if let f = labels.last!.utf8.first, f >= 0x30 && f <= 0x39 { return "the link's host is an IP address, not a name" }
        return nil
    }

    /// The URL to request for a link of `host` and `path`, and the client that connects it to the cache; throws
    /// when the host or path cannot be fetched safely that way.
    func request(host: String, path: String) throws(TLSClientError) -> (url: String, client: HTTPClient) {
        if let problem = Self.hostProblem(host) { throw TLSClientError(message: problem) }
        guard path.hasPrefix("/") else { throw TLSClientError(message: "the link's path does not start with /") }
        let bare = String(host.split(separator: ":", maxSplits: 1).first!).lowercased()
        let url = "https://\(bare):\(cachePort)\(path)"
        var retired: HTTPClient?
        let client = clients.withLock { c -> HTTPClient in
            if let existing = c.byHost[bare] {
                // Least recently used last: the one retired beyond `maxHosts` is the one idle longest.
                if c.order.last != bare, let at = c.order.firstIndex(of: bare) {
                    c.order.remove(at: at)
                    c.order.append(bare)
                }
                return existing
            }
            var configuration = HTTPClient.Configuration.singletonConfiguration
            configuration.tlsConfiguration = tls
            configuration.dnsOverride = [bare: cacheHost]
            configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connectionsPerHost
            configuration.apply(statetapBounds: ())
            let new = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
            c.byHost[bare] = new
            c.order.append(bare)
            if c.order.count > maxHosts {
                let oldest = c.order.removeFirst()
                retired = c.byHost.removeValue(forKey: oldest)
            }
            return new
        }
        if let retired { Task { try? await retired.shutdown() } }
        return (url, client)
    }

    public func shutdown() async {
        let all = clients.withLock { c -> [HTTPClient] in
            defer { c = ([:], []) }
            return Array(c.byHost.values)
        }
        for c in all { try? await c.shutdown() }
    }
}
