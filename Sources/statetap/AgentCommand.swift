import ArgumentParser
import AsyncHTTPClient
import Foundation
import Journal
import Logging
import Migration
import ServiceLifecycle

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the destination edge's agent: receive device state, pre-fetch it into the local edge cache.",
        discussion: """
            The control plane sends the agent a migration's plan (PUT /v1/transfers/{id}, an LZ4 frame of JSON; \
            the same id twice is one transfer). The agent journals it, fetches every planned link through the \
            local edge cache (--cache) with at most --concurrency requests in flight — a conditional GET \
            (If-None-Match / If-Modified-Since) for links with validators, a GET otherwise, a TCP pre-connect for \
            server names of TLS/QUIC-only applications — and reports progress and `ready` to the control plane. \
            After a restart it resumes the plans its journal holds that had not finished. \
            Every request needs the bearer token (--token-file or STATETAP_TOKEN). Stops on SIGINT or SIGTERM.
            """)

    @Option(help: ArgumentHelp("Listen on HOST:PORT.", valueName: "host:port"))
    var listen: String

    @Option(help: "The local edge cache's base URL, e.g. http://127.0.0.1:80: objects are fetched through it.")
    var cache: String

    @Option(help: "The agent's own journal directory (received plans and their status).")
    var journal: String

    @Option(help: "Fetches in flight at once.")
    var concurrency = 8

    @Option(help: "Seconds per fetch at most.")
    var fetchTimeout = 10

    @Option(help: "Largest transfer body (K, M suffixes); larger ones get 413.")
    var maxRequestBytes = "16M"

    @OptionGroup var security: APISecurityOptions

    @Option(help: "Also trust the CA certificates in this PEM file (the cache or the control plane over HTTPS).")
    var caFile: String?

    @Option(help: ArgumentHelp("The local edge cache's TLS address, e.g. https://127.0.0.1:443: HTTPS links are fetched through it, with the link's server name (SNI) and Host.", valueName: "url"))
    var cacheHttps: String?

    @Option(help: "Trust the CA certificates in this PEM file for --cache-https (default: the system's, and --ca-file's).")
    var cacheCaFile: String?

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard parseListenAddress(listen) != nil else {
            throw ValidationError("--listen takes HOST:PORT (e.g. 0.0.0.0:9090), got '\(listen)'")
        }
        guard cache.hasPrefix("http://") || cache.hasPrefix("https://") else {
            throw ValidationError("--cache takes a base URL like http://127.0.0.1:80, got '\(cache)'")
        }
        if !(1...1024).contains(concurrency) { throw ValidationError("--concurrency must be 1-1024") }
        if fetchTimeout < 1 { throw ValidationError("--fetch-timeout must be >= 1 second") }
        if let cacheHttps, URLParts(cacheHttps).scheme != "https" || URLParts(cacheHttps).problem != nil {
            throw ValidationError("--cache-https takes https://HOST[:PORT], got '\(cacheHttps)'")
        }
        if cacheCaFile != nil && cacheHttps == nil { throw ValidationError("--cache-ca-file needs --cache-https") }
        if parseBytes(maxRequestBytes) == nil { throw ValidationError("--max-request-bytes: '\(maxRequestBytes)' is not a size like 16M") }
    }

    func run() async throws {
        let log = global.bootstrap()
        let token = try security.token(log: log)
        let writer: JournalWriter
        do {
            var options = JournalOptions()
            options.fsync = .batch
            options.flushMilliseconds = 10
            writer = try JournalWriter(directory: journal, options: options, observer: nil, log: { log.warning("\($0)") })
        } catch {
            log.error("\(error.message)")
            throw ExitCode(error.kind == .locked || error.kind == .usage ? 64 : 1)
        }
        for d in writer.recovery.damages { log.warning("journal: damage in \(d)") }
        var c = AgentConfiguration(token: token, cacheURL: cache)
        c.concurrency = concurrency
        c.fetchTimeoutSeconds = Int64(fetchTimeout)
        c.maxBodyBytes = parseBytes(maxRequestBytes)!
        let client: HTTPClient
        do { client = try makeHTTPClient(caFile: caFile, connectionsPerHost: concurrency) } catch {
            log.error("--ca-file \(caFile ?? ""): \(error)")
            throw ExitCode(64)
        }
        var tlsClients: CacheTLSClients?
        if let cacheHttps {
            do {
                tlsClients = try CacheTLSClients(cacheURL: cacheHttps, caFile: cacheCaFile ?? caFile, connectionsPerHost: concurrency)
            } catch {
                log.error("--cache-https \(cacheHttps) / --cache-ca-file \(cacheCaFile ?? caFile ?? "-"): \(error)")
                throw ExitCode(64)
            }
        }
        let agent = Agent(configuration: c, journal: writer, client: client, tlsClients: tlsClients,
                          log: Logger(label: "statetap.agent"))
        do {
            let resumed = try agent.resume(directory: journal)
            if resumed > 0 { log.notice("resumed \(resumed) unfinished transfer(s) from the journal") }
        } catch {
            log.error("journal \(journal): \(error.message)")
            throw ExitCode(1)
        }
        writer.start()
        defer { writer.finish() }
        let (host, port) = parseListenAddress(listen)!
        let settings = c
        let server: any Service
        do {
            server = try makeServer(router: agent.router(), listen: security.listen(host: host, port: port),
                                    name: "statetap-agent", logger: log) { bound in
                log.info("agent listening on \(host):\(bound), cache \(settings.cacheURL), concurrency \(settings.concurrency)")
            }
        } catch {
            log.error("--tls-cert/--tls-key: \(error)")
            throw ExitCode(64)
        }
        let group = ServiceGroup(configuration: .init(services: [.init(service: server)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: log))
        try await group.run()
        await tlsClients?.shutdown()
        log.info("agent stopped")
    }
}
