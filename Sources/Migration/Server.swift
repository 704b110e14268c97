import AsyncHTTPClient
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle

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
public func makeServer(router: Router<BasicRequestContext>, listen: ListenConfiguration, name: String, logger: Logger,
                       onListening: @escaping @Sendable (Int) async -> Void = { _ in }) throws -> any Service
{
    var server: HTTPServerBuilder = .http1()
    if let cert = listen.tlsCertificate, let key = listen.tlsKey {
        let chain = try NIOSSLCertificate.fromPEMFile(cert).map { NIOSSLCertificateSource.certificate($0) }
        let tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        server = try .tls(.http1(), tlsConfiguration: tls)
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
public func makeHTTPClient(caFile: String?) throws -> HTTPClient {
    guard let caFile else { return .failingFast }
    var tls = TLSConfiguration.makeClientConfiguration()
    tls.additionalTrustRoots = [.file(caFile)]
    _ = try NIOSSLCertificate.fromPEMFile(caFile)  // a clear error now rather than at the first request
    var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
    configuration.connectionPool.retryConnectionEstablishment = false
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
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()
}
