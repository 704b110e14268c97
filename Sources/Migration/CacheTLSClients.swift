import AsyncHTTPClient
import NIOSSL
import Synchronization

/// HTTPS links fetched through the local edge cache's TLS port (`--cache-https`): the connection goes to the
/// cache's address, but the TLS server name (SNI), the certificate check and the Host header are the link's host,
/// as the device's own request had them, so a cache that serves many sites by SNI answers as it answered the
/// device. AsyncHTTPClient takes the server name from the URL, so each link host gets a client whose DNS override
/// maps that host to the cache; bounded in hosts (the least recently created is shut down beyond).
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

    /// The URL to request for a link of `host` and `path`, and the client that connects it to the cache.
    func request(host: String, path: String) -> (url: String, client: HTTPClient) {
        let bare = host.hasPrefix("[") ? String(host.dropFirst().prefix { $0 != "]" })
            : String(host.split(separator: ":", maxSplits: 1).first ?? Substring(host))
        let urlHost = bare.contains(":") ? "[\(bare)]" : bare
        let url = "https://\(urlHost):\(cachePort)\(path)"
        var retired: HTTPClient?
        let client = clients.withLock { c -> HTTPClient in
            if let existing = c.byHost[bare] { return existing }
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
