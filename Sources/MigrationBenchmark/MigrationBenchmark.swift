import AsyncHTTPClient
import Decode
import Extract
import Foundation
import Journal
import Logging
import Migration
import MigrationAPI
import NIOCore
import ServiceLifecycle
import Synchronization

/// The migration benchmark behind `statetap bench-migration` (hidden): issue 6's figures, in one process, on
/// loopback. A state store filled with N web links of one device, a real `Agent` whose cache is a real edge cache (nginx `proxy_cache`, started
/// by `Benchmarks/scripts/migration-bench.sh`), a real `ControlPlane` with that edge; then (a) signal → ready
/// against the number of links, (b) the transfer's size and time, (c) the signals per second the control plane
/// accepts. Every run uses its own URL prefix, so every run is cold at the cache (miss → origin).
public struct MigrationBenchmark: Sendable {
    /// Why a run could not go on (the command prints it as `error: …`).
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public init(cache: String) { self.cache = cache }


    /// The edge cache's base URL (nginx proxy_cache on loopback).
    public var cache: String

    /// Numbers of links to migrate, comma-separated.
    public var links = "100,1000,10000"

    /// Migrations per number of links (medians are printed).
    public var rounds = 3

    /// The agent's fetches in flight at once.
    public var concurrency = 8

    /// The agent's HTTP/1 connections per host (0: HTTPClient.shared, as `statetap agent` uses: 8).
    public var agentPool = 0

    /// Every Nth link has an ETag (fetched with a conditional GET); 0: none.
    public var etagEvery = 4

    /// Content-Length the state store records for each link (the planner's byte count).
    public var objectBytes = 1024

    /// Signals phase: concurrent clients POSTing MEC 012 cell changes.
    public var clients = 8

    /// Signals phase: seconds (0: skip it).
    public var seconds = 5

    /// Signals phase: where the migrations go: 'agent' (the real agent, devices with no links) or 'closed' (a closed loopback port: transfers retry in the background).
    public var signalTarget = "agent"

    /// Seconds a migration has (its deadline; also the bound of each wait).
    public var deadline: Double = 60

    /// In-process status poll interval, milliseconds.
    public var pollMs = 1

    /// Log level of the control plane and the agent.
    public var serviceLogLevel: Logger.Level = .warning

    /// Prefix of the benchmark's URLs (default: random, so a warm cache does not help).
    public var runId: String?


    /// "100,1000,10000" as numbers; nil when one is not a positive number.
    public static func parseLinks(_ text: String) -> [Int]? {
        let parts = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "")) }
        guard parts.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        return parts.compactMap { $0 }
    }

    /// Runs the three phases and prints their report (text, then JSON).
    public func run() async throws {
        var serviceLog = Logger(label: "statetap.bench")
        serviceLog.logLevel = serviceLogLevel
        let linkCounts = Self.parseLinks(links)!
        let maxLinks = linkCounts.max()!
        let runID = runId ?? String(UUID().uuidString.lowercased().prefix(8))
        let token = (0..<4).map { _ in String(UInt32.random(in: .min ... .max), radix: 16) }.joined(separator: "x") + "-statetap-bench"

        // The state store: one device per (links, round), each with its own URL prefix (cold at the cache).
        var limits = StoreLimits()
        limits.maxLinksPerApp = max(limits.maxLinksPerApp, maxLinks)
        let store = StateStore(limits: limits)
        let fillStart = ContinuousClock.now
        var devices: [[IPAddress]] = []
        for (ni, n) in linkCounts.enumerated() {
            var row: [IPAddress] = []
            for r in 0..<rounds {
                let device = IPAddress(ipv4: (10 << 24) | (77 << 16) | UInt32(ni << 8) | UInt32(r + 1))
                fill(store, device: device, links: n, prefix: "\(runID)-n\(n)-r\(r)")
                row.append(device)
            }
            devices.append(row)
        }
        let fillSeconds = secs(ContinuousClock.now - fillStart)
        let st = store.stats
        print("state store: \(st.devices) device(s), \(st.links) link(s) filled in \(String(format: "%.2f", fillSeconds)) s; URLs under /\(runID)-…")

        // Ports: the agent listens where the kernel says; the control plane's port must be known before it is
        // made (its advertised URL, where the agent reports); a closed port for the edge nobody serves.
        guard let cpPort = freeLoopbackPort(), let closedPort = freeLoopbackPort() else {
            throw Failure(description: "cannot find a free loopback port")
        }

        // The agent.
        var ac = AgentConfiguration(token: token, cacheURL: cache)
        ac.concurrency = concurrency
        ac.fetchTimeoutSeconds = 10
        let agentClient: HTTPClient
        let ownAgentClient = agentPool > 0
        if ownAgentClient {
            let cfg = HTTPClient.Configuration(connectionPool: .init(
                idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: agentPool))
            agentClient = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: cfg)
        } else {
            agentClient = .shared
        }
        let agent = Agent(configuration: ac, journal: nil, client: agentClient, log: serviceLog)
        let (agentPorts, agentPortsOut) = AsyncStream<Int>.makeStream()
        let agentServer = try makeServer(router: agent.router(), listen: ListenConfiguration(host: "127.0.0.1", port: 0),
                                         name: "statetap-agent", logger: serviceLog) { _ = agentPortsOut.yield($0) }

        // The control plane: edge-a (the source, its agent a closed port), edge-b (the real agent), edge-c (a
        // closed port: the signals phase's target in 'closed' mode).
        var cc = ControlPlaneConfiguration(token: token)
        cc.advertiseURL = "http://127.0.0.1:\(cpPort)"
        cc.defaultDeadlineSeconds = deadline
        cc.planner = Planner(rules: [], limits: PlanLimits(maxLinks: maxLinks, maxBytes: 1 << 40))
        let closedURL = "http://127.0.0.1:\(closedPort)"
        let plane = ControlPlane(store: store, edges: EdgeConfiguration(
            edges: [EdgeNode(name: "edge-a", agent: closedURL), EdgeNode(name: "edge-c", agent: closedURL)],
            cells: ["000000A": "edge-a", "000000C": "edge-c"]), configuration: cc, journal: nil, log: serviceLog)
        let (cpPorts, cpPortsOut) = AsyncStream<Int>.makeStream()
        let cpServer = try makeServer(router: plane.router(), listen: ListenConfiguration(host: "127.0.0.1", port: cpPort),
                                      name: "statetap", logger: serviceLog) { _ = cpPortsOut.yield($0) }

        var groupLog = Logger(label: "statetap.bench.services")
        groupLog.logLevel = .warning
        let group = ServiceGroup(configuration: .init(services: [.init(service: agentServer), .init(service: cpServer)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: groupLog))
        let benchClientConfig = HTTPClient.Configuration(connectionPool: .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(clients, 8)))
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: benchClientConfig)

        var failure: (any Error)?
        do {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                defer { tasks.cancelAll() }
                do {
                    guard let agentPort = await first(agentPorts, within: 10), await first(cpPorts, within: 10) != nil else {
                        throw Failure(description: "the servers did not start listening within 10 s")
                    }
                    let agentURL = "http://127.0.0.1:\(agentPort)"
                    try await plane.setEdge(EdgeNode(name: "edge-b", agent: agentURL))
                    try plane.setCell("000000B", edge: "edge-b")
                    print("agent \(agentURL) (cache \(cache), concurrency \(concurrency), pool \(agentPool == 0 ? "HTTPClient.shared (8/host)" : "\(agentPool)/host")); control plane http://127.0.0.1:\(cpPort)")
                    let cpURL = "http://127.0.0.1:\(cpPort)"
                    let results = try await migrations(linkCounts: linkCounts, devices: devices, plane: plane, client: client,
                                                       cpURL: cpURL, token: token, runID: runID)
                    var signals: SignalResult?
                    if seconds > 0 {
                        signals = try await signalsPhase(plane: plane, client: client, cpURL: cpURL, token: token)
                    }
                    report(results, signals: signals, runID: runID, fillSeconds: fillSeconds)
                } catch {
                    await group.triggerGracefulShutdown()
                    throw error
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        } catch {
            failure = error
        }
        try? await client.shutdown()
        if ownAgentClient { try? await agentClient.shutdown() }
        if let failure { throw failure }
    }

    // MARK: - (a) and (b): signal to ready, transfer

    struct RunResult: Encodable {
        var links: Int
        var round: Int
        var status: String
        var detail: String?
        var readyMs: Double?
        var wallMs: Double
        var postMs: Double
        var plannedMs: Double?
        var transferMs: Double?
        var prefetchMs: Double?
        var plannedLinks: Int
        var conditionalLinks: Int
        var rawBytes: Int
        var compressedBytes: Int
        var attempts: Int
        var objects: Int
        var objectBytes: Int
        var notModified: Int
        var failed: Int
        var cacheCheck: String
    }

    private func migrations(linkCounts: [Int], devices: [[IPAddress]], plane: ControlPlane, client: HTTPClient,
                            cpURL: String, token: String, runID: String) async throws -> [RunResult]
    {
        var out: [RunResult] = []
        for (ni, n) in linkCounts.enumerated() {
            for r in 0..<rounds {
                let device = devices[ni][r]
                let body = Array(#"{"device":"\#(device)","from":"edge-a","to":"edge-b"}"#.utf8)
                let t0 = ContinuousClock.now
                let (code, answer, _) = try await post(client, cpURL + "/v1/migrations", token: token, body: body)
                let postMs = ms(ContinuousClock.now - t0)
                guard code == 202, let view = try? JSONCoding.decoder.decode(MigrationView.self, from: Data(answer)) else {
                    throw Failure(description: "POST /v1/migrations answered \(code): \(String(decoding: answer.prefix(300), as: UTF8.self))")
                }
                // Read the status in-process (no HTTP in the measurement) until it is final, bounded.
                let limit = ContinuousClock.now + .seconds(deadline + 5)
                var last = view
                while !last.status.isFinal, ContinuousClock.now < limit {
                    try await Task.sleep(for: .milliseconds(pollMs))
                    if let v = plane.migration(view.id) { last = v }
                }
                let wallMs = ms(ContinuousClock.now - t0)
                let t = last.timings
                var check = "-"
                if r == 0, last.status == .ready {
                    check = await cacheCheck(client, path: "/\(runID)-n\(n)-r\(r)/obj/0.bin")
                }
                let result = RunResult(
                    links: n, round: r + 1, status: last.status.rawValue, detail: last.detail, readyMs: t.readyMs,
                    wallMs: wallMs, postMs: postMs, plannedMs: t.plannedMs,
                    transferMs: diff(t.prefetchingMs, t.transferringMs), prefetchMs: diff(t.readyMs, t.prefetchingMs),
                    plannedLinks: last.plan.links, conditionalLinks: last.plan.conditionalLinks,
                    rawBytes: last.transfer.rawBytes, compressedBytes: last.transfer.compressedBytes,
                    attempts: last.transfer.attempts, objects: last.prefetch.objects, objectBytes: last.prefetch.bytes,
                    notModified: last.prefetch.notModified, failed: last.prefetch.failed, cacheCheck: check)
                out.append(result)
                print("  links \(pad(String(n), 6)) round \(r + 1): \(last.status.rawValue) at \(fmt(t.readyMs)) ms (wall \(fmt(wallMs)) ms; plan \(fmt(t.plannedMs)), transfer \(fmt(result.transferMs)), prefetch \(fmt(result.prefetchMs)) ms), \(result.objects) objects, \(result.notModified) not modified, \(result.failed) failed\(check == "-" ? "" : "; one object again through the cache: \(check)")")
                if last.status != .ready, let d = last.detail { print("    detail: \(d)") }
                try await Task.sleep(for: .milliseconds(200))  // let the last reports and polls settle
            }
        }
        return out
    }

    private func fill(_ store: StateStore, device: IPAddress, links n: Int, prefix: String) {
        let now = UInt64(Date().timeIntervalSince1970 * 1e9)
        for i in 0..<n {
            var e = StateEvent(kind: .webLink, timestampNanoseconds: now - UInt64(n - i) * 1_000_000, device: device,
                               client: device, clientPort: 40000, server: IPAddress(ipv4: 0xCB00_7150), serverPort: 80,
                               vlans: [], teid: nil)
            e.method = "GET"
            e.url = "http://cdn.bench.example/\(prefix)/obj/\(i).bin"
            e.host = "cdn.bench.example"
            e.httpVersion = "HTTP/1.1"
            e.status = 200
            var h = ["cache-control": "public, max-age=600", "content-type": "application/octet-stream",
                     "content-length": "\(objectBytes)", "via": "1.1 edge-a", "x-cache": "HIT"]
            if etagEvery > 0 && i % etagEvery == 0 { h["etag"] = "\"bench-\(i)\"" }
            e.responseHeaders = h
            e.cacheable = true
            e.proxy = "edge-a"
            store.apply(.event(e))
        }
    }

    /// GET one migrated object through the cache: its `X-Cache-Status` (HIT: the agent put it there).
    private func cacheCheck(_ client: HTTPClient, path: String) async -> String {
        var r = HTTPClientRequest(url: cache + path)
        r.headers.add(name: "Host", value: "cdn.bench.example")
        guard let resp = try? await client.execute(r, timeout: .seconds(5)) else { return "no answer" }
        _ = try? await resp.body.collect(upTo: 16 << 20)
        return "\(resp.status.code) \(resp.headers.first(name: "X-Cache-Status") ?? "no X-Cache-Status")"
    }

    // MARK: - (c): signals per second

    struct SignalResult: Encodable {
        var target: String
        var clients: Int
        var seconds: Int
        var accepted: Int
        var rejected: Int
        var errors: Int
        var firstProblem: String?
        var perSecond: [Int]
        var acceptedPerSecond: Double
        var latencyP50Ms: Double
        var latencyP99Ms: Double
        var finalReady: Int
        var finalFailed: Int
        var finalOther: Int
        var notFinal: Int
        var drainSeconds: Double
    }

    private struct ClientTally: Sendable {
        var perSecond: [Int]
        var rejected = 0
        var errors = 0
        var problem: String?
        var latencies: [Double] = []
        var ids: [String] = []
    }

    private func signalsPhase(plane: ControlPlane, client: HTTPClient, cpURL: String, token: String) async throws -> SignalResult {
        let target = signalTarget == "agent" ? "000000B" : "000000C"
        let counter = SignalCounter()
        let duration = seconds
        let start = ContinuousClock.now
        let end = start + .seconds(duration)
        print("signals: \(clients) client(s) POSTing MEC 012 CellChangeNotifications (hoStatus 1, distinct devices, target \(signalTarget == "agent" ? "the real agent, devices with no links" : "a closed port")) for \(duration) s")
        let tallies = try await withThrowingTaskGroup(of: ClientTally.self) { tasks in
            for _ in 0..<clients {
                tasks.addTask {
                    var t = ClientTally(perSecond: Array(repeating: 0, count: duration + 1))
                    while ContinuousClock.now < end {
                        let k = counter.next()
                        let device = "10.\(100 + (k >> 16) & 0x7f).\((k >> 8) & 0xff).\(k & 0xff)"
                        let body = Array(#"{"notificationType":"CellChangeNotification","hoStatus":1,"associateId":[{"type":1,"value":"\#(device)"}],"srcEcgi":{"plmn":{"mcc":"001","mnc":"01"},"cellId":"000000A"},"trgEcgi":[{"plmn":{"mcc":"001","mnc":"01"},"cellId":"\#(target)"}]}"#.utf8)
                        let t0 = ContinuousClock.now
                        do {
                            let (code, answer, location) = try await post(client, cpURL + "/v1/notifications/cell-change",
                                                                          token: token, body: body)
                            let now = ContinuousClock.now
                            if (200..<300).contains(code) {
                                let second = min(Int(secs(now - start)), duration)
                                t.perSecond[second] += 1
                                t.latencies.append(ms(now - t0))
                                if let location { t.ids.append(String(location.split(separator: "/").last ?? "")) }
                            } else {
                                t.rejected += 1
                                if t.problem == nil { t.problem = "\(code): \(String(decoding: answer.prefix(200), as: UTF8.self))" }
                            }
                        } catch {
                            t.errors += 1
                            if t.problem == nil { t.problem = "\(error)" }
                        }
                    }
                    return t
                }
            }
            var all: [ClientTally] = []
            for try await t in tasks { all.append(t) }
            return all
        }
        var perSecond = Array(repeating: 0, count: duration + 1)
        var latencies: [Double] = []
        var ids: [String] = []
        for t in tallies {
            for (i, c) in t.perSecond.enumerated() { perSecond[i] += c }
            latencies += t.latencies
            ids += t.ids
        }
        // Answers that arrived after the last full second count with it.
        if duration > 0 {
            perSecond[duration - 1] += perSecond[duration]
        }
        perSecond.removeLast()
        let accepted = latencies.count
        latencies.sort()
        // How the migrations behind the signals end (bounded wait): the background work the signals started.
        let drainStart = ContinuousClock.now
        let drainLimit = drainStart + .seconds(signalTarget == "agent" ? 30 : 1)
        var counts = (ready: 0, failed: 0, other: 0, notFinal: 0)
        while true {
            counts = (0, 0, 0, 0)
            for id in ids {
                // An entry the control plane dropped (it keeps 10,000) was final.
                guard let v = plane.migration(id) else { counts.other += 1; continue }
                switch v.status {
                case .ready, .completed: counts.ready += 1
                case .failed: counts.failed += 1
                case .cancelled: counts.other += 1
                default: counts.notFinal += 1
                }
            }
            if counts.notFinal == 0 || ContinuousClock.now >= drainLimit { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let problem = tallies.compactMap(\.problem).first
        return SignalResult(
            target: signalTarget, clients: clients, seconds: duration, accepted: accepted,
            rejected: tallies.reduce(0) { $0 + $1.rejected }, errors: tallies.reduce(0) { $0 + $1.errors },
            firstProblem: problem, perSecond: perSecond, acceptedPerSecond: Double(accepted) / Double(max(duration, 1)),
            latencyP50Ms: percentile(latencies, 0.5), latencyP99Ms: percentile(latencies, 0.99),
            finalReady: counts.ready, finalFailed: counts.failed, finalOther: counts.other, notFinal: counts.notFinal,
            drainSeconds: secs(ContinuousClock.now - drainStart))
    }

    // MARK: - Report

    struct Summary: Encodable {
        var links: Int
        var rounds: Int
        var ok: Int
        var readyMsMedian: Double?
        var wallMsMedian: Double?
        var plannedMsMedian: Double?
        var transferMsMedian: Double?
        var prefetchMsMedian: Double?
        var rawBytes: Int
        var compressedBytes: Int
        var objectsMedian: Double?
    }

    struct Report: Encodable {
        var bench = "migration"
        var runId: String
        var concurrency: Int
        var agentPool: Int
        var fillSeconds: Double
        var summary: [Summary]
        var runs: [RunResult]
        var signals: SignalResult?
    }

    private func report(_ runs: [RunResult], signals: SignalResult?, runID: String, fillSeconds: Double) {
        var summaries: [Summary] = []
        for n in Self.parseLinks(links)! {
            let rs = runs.filter { $0.links == n }
            let ok = rs.filter { $0.status == "ready" }
            summaries.append(Summary(
                links: n, rounds: rs.count, ok: ok.count, readyMsMedian: median(ok.compactMap(\.readyMs)),
                wallMsMedian: median(ok.map(\.wallMs)), plannedMsMedian: median(ok.compactMap(\.plannedMs)),
                transferMsMedian: median(ok.compactMap(\.transferMs)), prefetchMsMedian: median(ok.compactMap(\.prefetchMs)),
                rawBytes: rs.first?.rawBytes ?? 0, compressedBytes: rs.first?.compressedBytes ?? 0,
                objectsMedian: median(ok.map { Double($0.objects + $0.notModified) })))
        }
        print("")
        print("(a, b) signal to ready, medians of \(rounds) round(s); agent concurrency \(concurrency); every run cold at the cache")
        print("  links  ready  signal->ready ms  wall ms   plan ms  transfer ms  prefetch ms   raw bytes   lz4 bytes  objects")
        for s in summaries {
            print("  " + pad(String(s.links), 5) + "  " + pad("\(s.ok)/\(s.rounds)", 5) + "  " + pad(fmt(s.readyMsMedian), 16)
                  + "  " + pad(fmt(s.wallMsMedian), 7) + "  " + pad(fmt(s.plannedMsMedian), 8) + "  " + pad(fmt(s.transferMsMedian), 11)
                  + "  " + pad(fmt(s.prefetchMsMedian), 11) + "  " + pad(String(s.rawBytes), 10) + "  " + pad(String(s.compressedBytes), 10)
                  + "  " + pad(s.objectsMedian.map { String(Int($0)) } ?? "-", 7))
        }
        print("  (plan = signal to planned: snapshot, ranking, plan, JSON, LZ4; transfer = prefetching - transferring:")
        print("   the PUT to the agent and its decoding; prefetch = ready - prefetching: the agent's fetches and its report)")
        if let s = signals {
            print("")
            print("(c) signals accepted (2xx) per second, \(s.clients) client(s), target \(s.target)")
            print("  per second: \(s.perSecond.map(String.init).joined(separator: " "))")
            print(String(format: "  %d accepted in %d s = %.0f/s; latency p50 %.2f ms, p99 %.2f ms; %d rejected, %d errors",
                         s.accepted, s.seconds, s.acceptedPerSecond, s.latencyP50Ms, s.latencyP99Ms, s.rejected, s.errors))
            if let p = s.firstProblem { print("  first problem: \(p)") }
            print(String(format: "  the migrations behind them after %.1f s more: %d ready, %d failed, %d other, %d not final",
                         s.drainSeconds, s.finalReady, s.finalFailed, s.finalOther, s.notFinal))
        }
        let r = Report(runId: runID, concurrency: concurrency, agentPool: agentPool, fillSeconds: fillSeconds,
                       summary: summaries, runs: runs, signals: signals)
        if let data = try? JSONCoding.encoder.encode(r) { print(String(decoding: data, as: UTF8.self)) }
    }
}

// MARK: - Helpers

/// Distinct device numbers for the signals' clients.
private final class SignalCounter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.add(1, ordering: .relaxed).newValue }
}

private func post(_ client: HTTPClient, _ url: String, token: String, body: [UInt8]) async throws -> (Int, [UInt8], String?) {
    var r = HTTPClientRequest(url: url)
    r.method = .POST
    r.headers.add(name: "Authorization", value: "Bearer \(token)")
    r.headers.add(name: "Content-Type", value: "application/json")
    r.body = .bytes(ByteBuffer(bytes: body))
    let response = try await client.execute(r, timeout: .seconds(10))
    let answer = try await response.body.collect(upTo: 16 << 20)
    return (Int(response.status.code), Array(answer.readableBytesView), response.headers.first(name: "Location"))
}

/// The first value of `stream`, or nil after `seconds`.
private func first(_ stream: AsyncStream<Int>, within seconds: Int) async -> Int? {
    await withTaskGroup(of: Int?.self) { g in
        g.addTask {
            for await v in stream { return v }
            return nil
        }
        g.addTask {
            try? await Task.sleep(for: .seconds(seconds))
            return nil
        }
        let v = await g.next() ?? nil
        g.cancelAll()
        return v
    }
}

/// A loopback TCP port nobody listens on now (bound, read, closed).
private func freeLoopbackPort() -> Int? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
    }
    guard bound == 0 else { return nil }
    let named = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    guard named == 0 else { return nil }
    return Int(UInt16(bigEndian: addr.sin_port))
}

private func secs(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

private func ms(_ d: Duration) -> Double { secs(d) * 1000 }

private func diff(_ a: Double?, _ b: Double?) -> Double? {
    guard let a, let b else { return nil }
    return a - b
}

private func median(_ xs: [Double]) -> Double? {
    guard !xs.isEmpty else { return nil }
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

private func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.down)))]
}

private func fmt(_ x: Double?) -> String { x.map { String(format: "%.1f", $0) } ?? "-" }

private func pad(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
