import ArgumentParser
import AsyncHTTPClient
import Foundation
import Extract
import Journal
import Logging
import Migration
import ServiceLifecycle
import Tap

/// `--serve` and what the control plane needs: shared by `capture` and `replay`.
struct ControlPlaneOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Serve the control plane API on HOST:PORT (HTTP, JSON; every request needs the bearer token). Needs --journal: the API answers from the state store.", valueName: "host:port"))
    var serve: String?

    @Option(help: "Edges file (JSON): {\"edges\": [{\"name\", \"agent\": URL}], \"cells\": {CELL: EDGE}, \"policies\": [{\"host\", \"endpoint\", \"method\"}]}.")
    var edges: String?

    @Option(help: "The control plane's URL as agents reach it, for their progress reports (default: http://HOST:PORT of --serve).")
    var advertise: String?

    @Option(help: "Links per migration at most (most valuable first).")
    var prefetchMaxLinks = 1000

    @Option(help: "Bytes per migration at most, from the links' Content-Length (K, M, G suffixes).")
    var prefetchMaxBytes = "1G"

    @Option(help: "Seconds a migration has when its signal gives no deadline.")
    var migrationDeadline: Double = 30

    @Option(help: "Migrations in flight at most (each holds a task and its plan, ~24 KB with an empty plan, measured); a signal past it gets 429 with Retry-After, counted in statetap_migrations_refused_total.")
    var maxMigrations = 4096

    @Option(help: "Farthest deadline a signal may set, in seconds (a migration retries until its deadline).")
    var maxMigrationDeadline: Double = 3600

    @Option(help: "Largest API request body (K, M suffixes); larger ones get 413.")
    var maxRequestBytes = "1M"

    @OptionGroup var security: APISecurityOptions

    @Option(help: "Also trust the CA certificates in this PEM file when talking to agents over HTTPS.")
    var agentCaFile: String?

    @Option(help: ArgumentHelp("URL schemes an agent may have (it receives the token), comma-separated.", valueName: "schemes"))
    var agentSchemes = "http,https"

    @Option(help: ArgumentHelp("Address prefixes agents must be in, comma-separated (e.g. 10.20.0.0/16,fd00::/8); a name is resolved when its edge is configured and every address must be inside. Default: any address but link-local (169.254/16, fe80::/10), unspecified and multicast, which are always refused.", valueName: "cidrs"))
    var agentNetworks: String?

    /// `--agent-schemes` and `--agent-networks` as a policy; the reason when one of them is not valid.
    func agentPolicy() throws(ValidationError) -> AgentPolicy {
        var policy = AgentPolicy()
        let schemes = agentSchemes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard !schemes.isEmpty, schemes.allSatisfy({ $0 == "http" || $0 == "https" }) else {
            throw ValidationError("--agent-schemes takes http, https or both (comma-separated), got '\(agentSchemes)'")
        }
        policy.schemes = Set(schemes)
        for cidr in (agentNetworks ?? "").split(separator: ",") {
            if let problem = policy.allow(network: cidr.trimmingCharacters(in: .whitespaces)) {
                throw ValidationError("--agent-networks: \(problem)")
            }
        }
        if agentNetworks != nil && policy.networks.isEmpty { throw ValidationError("--agent-networks is empty: give ADDRESS/LENGTH,…") }
        return policy
    }

    func validate() throws {
        guard let serve else {
            if edges != nil || advertise != nil || agentNetworks != nil {
                throw ValidationError("--edges, --advertise and --agent-networks need --serve")
            }
            return
        }
        guard parseListenAddress(serve) != nil else {
            throw ValidationError("--serve takes HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080), got '\(serve)'")
        }
        if advertise == nil, let (host, port) = parseListenAddress(serve),
           host == "0.0.0.0" || host == "::" || port == 0
        {
            throw ValidationError("--serve \(serve) does not say how agents reach this host: give --advertise URL (e.g. http://10.0.0.5:8080)")
        }
        _ = try agentPolicy()
        if prefetchMaxLinks < 0 { throw ValidationError("--prefetch-max-links must be >= 0") }
        if parseBytes(prefetchMaxBytes) == nil { throw ValidationError("--prefetch-max-bytes: '\(prefetchMaxBytes)' is not a size like 500M") }
        if parseBytes(maxRequestBytes) == nil { throw ValidationError("--max-request-bytes: '\(maxRequestBytes)' is not a size like 1M") }
        if !(migrationDeadline > 0) { throw ValidationError("--migration-deadline must be > 0 seconds") }
        if !(1...1_000_000).contains(maxMigrations) { throw ValidationError("--max-migrations must be 1...1000000, got \(maxMigrations)") }
        if !(maxMigrationDeadline >= migrationDeadline && maxMigrationDeadline <= 86_400) {
            throw ValidationError("--max-migration-deadline must be at least --migration-deadline (\(migrationDeadline) s) and at most 86400 s")
        }
    }

    /// The control plane and its server, or nil without --serve.
    func make(journal: JournalSession?, tlsKeys: TLSKeyStore? = nil, log: Logger) throws -> (ControlPlane, any Service)? {
        guard let serve, let (host, port) = parseListenAddress(serve) else { return nil }
        guard let journal else {
            log.error("--serve needs --journal DIR: the control plane answers from the state store built from the journal")
            throw ExitCode(64)
        }
        let token = try security.token(log: log)
        let agents = try agentPolicy()
        var edgeConfig = EdgeConfiguration()
        if let edges {
            do {
                edgeConfig = try JSONDecoder().decode(EdgeConfiguration.self, from: Data(contentsOf: URL(fileURLWithPath: edges)))
            } catch let e as DecodingError {
                log.error("--edges \(edges): \(describeDecodingError(e))")
                throw ExitCode(64)
            } catch {
                log.error("--edges \(edges): cannot read it: \(error.localizedDescription)")
                throw ExitCode(64)
            }
            let problems = edgeConfigurationProblems(edgeConfig, policy: agents)
            if !problems.isEmpty {
                log.error("--edges \(edges): \(problems.joined(separator: "; "))")
                throw ExitCode(64)
            }
        }
        var c = ControlPlaneConfiguration(token: token)
        let scheme = security.tlsCert == nil ? "http" : "https"
        c.advertiseURL = advertise ?? "\(scheme)://\(host.contains(":") ? "[\(host)]" : host):\(port)"
        c.defaultDeadlineSeconds = migrationDeadline
        c.maxDeadlineSeconds = maxMigrationDeadline
        c.maxMigrationsInFlight = maxMigrations
        c.agents = agents
        c.tlsKeys = tlsKeys
        c.planner = Planner(rules: edgeConfig.policies ?? [],
                            limits: PlanLimits(maxLinks: prefetchMaxLinks, maxBytes: parseBytes(prefetchMaxBytes)!))
        c.maxBodyBytes = parseBytes(maxRequestBytes)!
        let writer = journal.writer
        let client: HTTPClient
        do { client = try makeHTTPClient(caFile: agentCaFile) } catch {
            log.error("--agent-ca-file \(agentCaFile ?? ""): \(error)")
            throw ExitCode(64)
        }
        let plane = ControlPlane(store: journal.store, edges: edgeConfig, configuration: c,
                                 journal: { writer.appendMarker($0) }, client: client,
                                 log: Logger(label: "statetap.control"))
        let listen = security.listen(host: host, port: port)
        let server: any Service
        let edgeCount = edgeConfig.edges.count, cellCount = edgeConfig.cells.count
        do {
            server = try makeServer(router: plane.router(), listen: listen, name: "statetap", logger: log) { bound in
                log.info("control plane listening on \(host):\(bound) (\(scheme)); \(edgeCount) edge(s), \(cellCount) cell(s)")
            }
        } catch {
            log.error("--tls-cert/--tls-key: \(error)")
            throw ExitCode(64)
        }
        return (plane, server)
    }
}

/// The API's bearer token and optional TLS: shared by the control plane (`--serve`) and the agent.
struct APISecurityOptions: ParsableArguments {
    @Option(help: "File whose first line is the API bearer token (else the environment variable STATETAP_TOKEN); at least 16 characters.")
    var tokenFile: String?

    @Option(help: "Serve HTTPS with this PEM certificate chain (with --tls-key).")
    var tlsCert: String?

    @Option(help: "PEM private key of --tls-cert.")
    var tlsKey: String?

    func validate() throws {
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
    }

    func token(log: Logger) throws -> String {
        do { return try loadToken(file: tokenFile) } catch {
            log.error("\(error.message)")
            throw ExitCode(64)
        }
    }

    func listen(host: String, port: Int) -> ListenConfiguration {
        ListenConfiguration(host: host, port: port, tlsCertificate: tlsCert, tlsKey: tlsKey)
    }
}

