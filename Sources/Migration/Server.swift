import AsyncHTTPClient
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import MigrationAPI

/// Where and how an API listens.
public struct ListenConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// PEM files; both or neither (then plain HTTP).
    public var tlsCertificate: String?
    public var tlsKey: String?

    public init(host: String, port: Int, tlsCertificate: String? = nil, tlsKey: String? = nil) {
        self.host = host
        self.port = port
        self.tlsCertificate = tlsCertificate
        self.tlsKey = tlsKey
    }
}

/// An HTTP(S) server for `router` as a service-lifecycle service; `onListening` is called with the bound port
/// once it accepts connections.
/// `limits`: read deadlines and the connection cap (`ConnectionLimits`); the process's open-file limit is raised
/// to its hard limit first, where allowed.
public func makeServer(router: Router<BasicRequestContext>, listen: ListenConfiguration, name: String, logger: Logger,
                       limits: ConnectionLimits = ConnectionLimits(), statistics: ConnectionStatistics = .shared,
                       onListening: @escaping @Sendable (Int) async -> Void = { _ in }) throws -> any Service
{
    raiseOpenFileLimit()
    // Idle connections are closed: a client that opens connections and sends nothing holds no resources long; one
    // that trickles its request a byte at a time is closed at the read deadline (`ConnectionGuardHandler`).
    let http1 = HTTP1Channel.Configuration(additionalChannelHandlers: [ConnectionGuardHandler(limits: limits, statistics: statistics)],
                                           idleTimeout: .seconds(30))
    var server: HTTPServerBuilder = .http1(configuration: http1)
    if let cert = listen.tlsCertificate, let key = listen.tlsKey {
        let chain = try NIOSSLCertificate.fromPEMFile(cert).map { NIOSSLCertificateSource.certificate($0) }
        let tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        server = try .tls(.http1(configuration: http1), tlsConfiguration: tls)
    }
    var quiet = logger
    quiet.logLevel = max(logger.logLevel, .notice)  // Hummingbird logs each request at info: URLs stay out of info logs
    return Application(
        router: router, server: server,
        configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: name),
        onServerRunning: { channel in await onListening(channel.localAddress?.port ?? listen.port) },
        logger: quiet)
}

/// An HTTP client that also trusts the CA certificates in `caFile` (PEM), for agents or control planes serving
/// HTTPS with a private CA; `HTTPClient.failingFast` (system trust) without one. Either fails a request at once
/// when its connection cannot be made. Lives as long as the process.
/// `connectionsPerHost`: the agent's --concurrency (the shared pool keeps 8 per host).
public func makeHTTPClient(caFile: String?, connectionsPerHost: Int = 8) throws -> HTTPClient {
    guard caFile != nil || connectionsPerHost != 8 else { return .failingFast }
    var configuration = HTTPClient.Configuration.singletonConfiguration
    if let caFile {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.additionalTrustRoots = [.file(caFile)]
        _ = try NIOSSLCertificate.fromPEMFile(caFile)  // a clear error now rather than at the first request
        configuration.tlsConfiguration = tls
    }
    configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connectionsPerHost
    configuration.apply(statetapBounds: ())
    return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
}

extension HTTPClient {
    /// `HTTPClient.shared`'s settings, except that a connection that cannot be made fails the request at once.
    /// AsyncHTTPClient would otherwise retry the connection by itself, silently, until the request's timeout: an
    /// agent that is down would cost the control plane a whole attempt (up to 5 s) with no error shown, and its own
    /// retries (backoff until the deadline, attempts counted, the last error in the migration) would not happen.
    /// Lives as long as the process, as `.shared` does.
    public static let failingFast: HTTPClient = {
        var configuration = HTTPClient.Configuration.singletonConfiguration
        configuration.apply(statetapBounds: ())
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()
}

extension HTTPClient.Configuration {
    /// What every statetap client needs: a refused connection fails at once (see `failingFast`); connects and
    /// reads are bounded (AsyncHTTPClient's request timeout ends when the headers arrive: a body that stalls would
    /// hold a prefetch slot or a migration past its deadline); redirects are not followed (the agent fetches
    /// through its cache, never around it).
    mutating func apply(statetapBounds: Void) {
        connectionPool.retryConnectionEstablishment = false
        timeout = .init(connect: .seconds(2), read: .seconds(5))
        redirectConfiguration = .disallow
    }
}
