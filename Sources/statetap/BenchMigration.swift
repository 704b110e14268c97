import ArgumentParser
import Logging
import MigrationBenchmark

/// `statetap bench-migration` (hidden): the flags of `MigrationBenchmark`, which says what it measures.
struct BenchMigration: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-migration",
        abstract: "Benchmark: migration signal to ready, transfer size and time, signals per second (loopback).",
        discussion: """
            Needs an edge cache on loopback (--cache), e.g. nginx proxy_cache in front of an origin that answers \
            any path with a cacheable object: Benchmarks/scripts/migration-bench.sh sets that up and runs this.
            """,
        shouldDisplay: false)

    @Option(help: "The edge cache's base URL (nginx proxy_cache on loopback).")
    var cache: String

    @Option(help: "Numbers of links to migrate, comma-separated.")
    var links = "100,1000,10000"

    @Option(help: "Migrations per number of links (medians are printed).")
    var rounds = 3

    @Option(help: "The agent's fetches in flight at once.")
    var concurrency = 8

    @Option(help: "The agent's HTTP/1 connections per host (0: HTTPClient.shared, as `statetap agent` uses: 8).")
    var agentPool = 0

    @Option(help: "Every Nth link has an ETag (fetched with a conditional GET); 0: none.")
    var etagEvery = 4

    @Option(help: "Content-Length the state store records for each link (the planner's byte count).")
    var objectBytes = 1024

    @Option(help: "Signals phase: concurrent clients POSTing MEC 012 cell changes.")
    var clients = 8

    @Option(help: "Signals phase: seconds (0: skip it).")
    var seconds = 5

    @Option(help: "Signals phase: where the migrations go: 'agent' (the real agent, devices with no links) or 'closed' (a closed loopback port: transfers retry in the background).")
    var signalTarget = "agent"

    @Option(help: "Seconds a migration has (its deadline; also the bound of each wait).")
    var deadline: Double = 60

    @Option(help: "In-process status poll interval, milliseconds.")
    var pollMs = 1

    @Option(help: "Log level of the control plane and the agent.")
    var serviceLogLevel: Logger.Level = .warning

    @Option(help: "Prefix of the benchmark's URLs (default: random, so a warm cache does not help).")
    var runId: String?

    func validate() throws {
        guard cache.hasPrefix("http://") else { throw ValidationError("--cache takes a base URL like http://127.0.0.1:8081") }
        guard let ns = MigrationBenchmark.parseLinks(links), !ns.isEmpty else {
            throw ValidationError("--links takes positive numbers separated by commas, e.g. 100,1000,10000")
        }
        if rounds < 1 { throw ValidationError("--rounds must be >= 1") }
        if !(1...1024).contains(concurrency) { throw ValidationError("--concurrency must be 1-1024") }
        if agentPool < 0 { throw ValidationError("--agent-pool must be >= 0") }
        if etagEvery < 0 { throw ValidationError("--etag-every must be >= 0") }
        if !(1...4096).contains(clients) { throw ValidationError("--clients must be 1-4096") }
        if seconds < 0 { throw ValidationError("--seconds must be >= 0") }
        if signalTarget != "agent" && signalTarget != "closed" { throw ValidationError("--signal-target is 'agent' or 'closed'") }
        if !(deadline > 0) { throw ValidationError("--deadline must be > 0") }
        if !(1...1000).contains(pollMs) { throw ValidationError("--poll-ms must be 1-1000") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .info
            return h
        }
        var b = MigrationBenchmark(cache: cache)
        b.links = links
        b.rounds = rounds
        b.concurrency = concurrency
        b.agentPool = agentPool
        b.etagEvery = etagEvery
        b.objectBytes = objectBytes
        b.clients = clients
        b.seconds = seconds
        b.signalTarget = signalTarget
        b.deadline = deadline
        b.pollMs = pollMs
        b.serviceLogLevel = serviceLogLevel
        b.runId = runId
        do {
            try await b.run()
        } catch let failure as MigrationBenchmark.Failure {
            print("error: \(failure)")
            throw ExitCode(1)
        }
    }
}
