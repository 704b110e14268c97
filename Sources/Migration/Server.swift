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
