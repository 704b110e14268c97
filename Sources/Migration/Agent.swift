import AsyncHTTPClient
import Decode
import Foundation
import Hummingbird
import Journal
import Logging
import NIOCore
import NIOPosix
import Extract
import Rings
import Synchronization
import MigrationAPI

/// Settings of the destination edge's agent.
public struct AgentConfiguration: Sendable {
    public var token: String
    /// The local edge cache, e.g. `http://127.0.0.1:80`: every object is fetched through it.
    public var cacheURL: String
    /// Fetches in flight at once.
    public var concurrency = 8
    /// Largest transfer body accepted, compressed and decompressed.
    public var maxBodyBytes = 16 << 20
    public var maxPlanBytes = 64 << 20
    /// Progress reports to the control plane at most this often (and always at the end).
    public var progressIntervalMilliseconds = 200
    /// Per object.
    public var fetchTimeoutSeconds: Int64 = 10
    /// `hosts-only` applications: TCP pre-connect to this port of each server name.
    public var preconnectPort = 443

    public init(token: String, cacheURL: String) {
        self.token = token
        self.cacheURL = cacheURL.hasSuffix("/") ? String(cacheURL.dropLast()) : cacheURL
    }
}

/// The agent at the destination edge: receives a device's plan (idempotent by migration id), keeps it in its own
/// journal, pre-fetches the links through the local edge cache with bounded concurrency (conditional requests
/// for links with validators, TCP pre-connects for server names), reports progress and `ready` to the control
/// plane, and resumes unfinished work after a restart.
public final class Agent: Sendable {
    public let configuration: AgentConfiguration
    public let metrics: ServiceMetrics
    private let journal: JournalWriter?
    private let client: HTTPClient
    /// HTTPS links: through the cache's TLS port; nil: HTTPS links fail (counted), HTTP ones go on.
    private let tlsClients: CacheTLSClients?
    private let log: Logger
    private let transfers = Mutex<[String: Entry]>([:])
    /// Migrations cancelled before their plan arrived (a DELETE can overtake the PUT): a later PUT starts nothing.
    private let tombstones = Mutex<Set<String>>([])

    private struct Entry {
        var status: AgentTransferStatus
        var plan: MigrationPlan
        var task: Task<Void, Never>?
    }

    public init(configuration: AgentConfiguration, journal: JournalWriter?, metrics: ServiceMetrics = ServiceMetrics(),
                client: HTTPClient = .shared, tlsClients: CacheTLSClients? = nil,
                log: Logger = Logger(label: "statetap.agent"))
    {
        self.tlsClients = tlsClients
        self.configuration = configuration
        self.journal = journal
        self.metrics = metrics
        self.client = client
        self.log = log
    }

    /// Takes a plan. A plan already known (same migration id) is not started twice: its status is returned.
    public func receive(_ plan: MigrationPlan, raw: [UInt8]) -> (status: AgentTransferStatus, created: Bool) {
        let now = unixMilliseconds()
        if tombstones.withLock({ $0.contains(plan.migrationId) }) {
            return (Self.cancelledBeforeArrival(plan.migrationId), false)
        }
        let (status, created) = transfers.withLock { t -> (AgentTransferStatus, Bool) in
            if let e = t[plan.migrationId] { return (e.status, false) }
            let s = AgentTransferStatus(migrationId: plan.migrationId, status: .received, detail: nil,
                                        progress: PrefetchProgress(), receivedAtUnixMs: now, finishedAtUnixMs: nil)
            t[plan.migrationId] = Entry(status: s, plan: plan, task: nil)
            return (s, true)
        }
        guard created else { return (status, false) }
        if let journal, let device = IPAddress(plan.device) {
            journal.appendMarker(.plan(PlanMark(migrationID: plan.migrationId, device: device,
                                                timestampNanoseconds: realtimeNanoseconds(), body: raw)))
        }
        journalStatus(plan.migrationId)
        log.info("transfer \(plan.migrationId): device \(plan.device) from \(plan.from.isEmpty ? "?" : plan.from), \(plan.summary.links) link(s), \(plan.summary.hosts) host(s)")
        start(plan)
        return (status, true)
    }

    public func status(_ id: String) -> AgentTransferStatus? { transfers.withLock { $0[id]?.status } }

    public func all() -> [AgentTransferStatus] {
        transfers.withLock { $0.values.map(\.status).sorted { $0.receivedAtUnixMs > $1.receivedAtUnixMs } }
    }

    /// Stops prefetching for a migration (what is fetched stays in the cache). An id never seen is remembered as
    /// cancelled, so that its plan, should it still arrive, starts nothing.
    public func cancel(_ id: String) -> AgentTransferStatus {
        let (known, task) = transfers.withLock { t -> (Bool, Task<Void, Never>?) in
            guard let e = t[id] else { return (false, nil) }
            return (true, e.status.status.isFinal ? nil : e.task)
        }
        guard known else {
            tombstones.withLock { s in
                if s.count >= 100_000 { s.removeAll() }  // bounded; an old tombstone matters for seconds only
                s.insert(id)
            }
            return Self.cancelledBeforeArrival(id)
        }
        task?.cancel()
        finish(id, .cancelled, detail: "cancelled by the control plane")
        return status(id)!
    }

    private static func cancelledBeforeArrival(_ id: String) -> AgentTransferStatus {
        AgentTransferStatus(migrationId: id, status: .cancelled, detail: "cancelled before its plan arrived",
                            progress: PrefetchProgress(), receivedAtUnixMs: unixMilliseconds(),
                            finishedAtUnixMs: unixMilliseconds())
    }

    /// Plans from the journal whose work did not finish (the agent stopped): started again, or failed when their
    /// deadline has passed. Returns how many were resumed.
    public func resume(directory: String) throws(JournalError) -> Int {
        var plans: [String: ([UInt8], MigrationPlan)] = [:]
        var last: [String: String] = [:]
        _ = try JournalReader(directory: directory).read { record in
            switch record {
            case .plan(let p):
                if let plan = try? JSONCoding.decoder.decode(MigrationPlan.self, from: Data(p.body)) {
                    plans[p.migrationID] = (p.body, plan)
                }
            case .migration(let m): last[m.id] = m.status
            case .event: break
            }
        }
        var resumed = 0
        for (id, (_, plan)) in plans.sorted(by: { $0.key < $1.key }) {
            let final = last[id].flatMap(AgentTransferStatus.Status.init(rawValue:))?.isFinal ?? false
            guard !final else { continue }
            let s = AgentTransferStatus(migrationId: id, status: .received, detail: "resumed after a restart",
                                        progress: PrefetchProgress(), receivedAtUnixMs: unixMilliseconds(),
                                        finishedAtUnixMs: nil)
            transfers.withLock { $0[id] = Entry(status: s, plan: plan, task: nil) }
            if plan.deadlineUnixMs <= unixMilliseconds() {
                finish(id, .failed, detail: "the deadline passed while the agent was down")
                continue
            }
            log.notice("transfer \(id): resuming after a restart")
            start(plan)
            resumed += 1
        }
        return resumed
    }

    private func start(_ plan: MigrationPlan) {
        let task = Task { [self] in await prefetch(plan) }
        // Cancelled before the task was stored: the prefetch loop sees the final status before each fetch.
        transfers.withLock { $0[plan.migrationId]?.task = task }
    }

    // MARK: - Prefetching

    private enum Item: Sendable {
        case link(PlannedLink)
        case host(String)
    }

    private enum Outcome: Sendable {
        case fetched(Int), notModified, failed(String), connected
    }

    private func prefetch(_ plan: MigrationPlan) async {
        let id = plan.migrationId
        let items = plan.apps.flatMap { app in app.links.map(Item.link) + app.hosts.map(Item.host) }
        var progress = PrefetchProgress()
        progress.total = items.count
        progress.skippedUncacheable = plan.summary.skippedUncacheable
        update(id) { $0.status = .prefetching; $0.progress = progress }
        journalStatus(id)
        report(id, force: true)
        let deadline = Double(plan.deadlineUnixMs) / 1000
        var lastReport = ContinuousClock.now
        var firstError: String?
        await withTaskGroup(of: Outcome.self) { group in
            var next = 0
            func add() {
                guard next < items.count else { return }
                let item = items[next]
                next += 1
                group.addTask { [self] in await fetch(item, id: id) }
            }
            for _ in 0..<min(configuration.concurrency, items.count) { add() }
            while let outcome = await group.next() {
                progress.done += 1
                switch outcome {
                case .fetched(let n): progress.objects += 1; progress.bytes += n
                case .notModified: progress.notModified += 1
                case .connected: progress.hostsConnected += 1
                case .failed(let why):
                    progress.failed += 1
                    if firstError == nil { firstError = why }
                }
                let snapshot = progress
                update(id) { $0.progress = snapshot }
                if Task.isCancelled || Date().timeIntervalSince1970 >= deadline || status(id)?.status.isFinal != false {
                    group.cancelAll()
                    continue
                }
                add()
                if ContinuousClock.now - lastReport >= .milliseconds(configuration.progressIntervalMilliseconds) {
                    lastReport = .now
                    report(id, force: false)
                }
            }
        }
        metrics.prefetched(objects: progress.objects, bytes: progress.bytes, notModified: progress.notModified,
                           failed: progress.failed)
        if Task.isCancelled || status(id)?.status.isFinal != false { return }
        if progress.done < progress.total {
            finish(id, .failed, detail: "the deadline passed with \(progress.done) of \(progress.total) done")
        } else if progress.failed > 0 && progress.failed == progress.total {
            finish(id, .failed, detail: "every fetch failed; first: \(firstError ?? "?")")
        } else {
            let note = progress.failed > 0 ? "\(progress.failed) fetch(es) failed; first: \(firstError ?? "?")" : nil
            finish(id, .ready, detail: note)
        }
    }

    private func fetch(_ item: Item, id: String) async -> Outcome {
        switch item {
        case .link(let link):
            var r: HTTPClientRequest
            var client = self.client
            if link.url.hasPrefix("https://") {
                // Through the cache's TLS port, with the link's server name (see CacheTLSClients).
                guard let tlsClients else { return .failed("an HTTPS link, and the agent has no --cache-https") }
                do throws(CacheTLSClients.TLSClientError) {
                    let (url, c) = try tlsClients.request(host: link.host, path: link.path)
                    r = HTTPClientRequest(url: url)
                    client = c
                } catch {
                    return .failed(error.message)
                }
            } else {
                // The path is appended to the cache's URL: anything but an absolute path could change its authority.
                guard link.path.hasPrefix("/") else { return .failed("the link's path does not start with /") }
                r = HTTPClientRequest(url: configuration.cacheURL + link.path)
            }
            r.headers.add(name: "Host", value: link.host)
            r.headers.add(name: "User-Agent", value: "statetap-agent (prefetch)")
            r.headers.add(name: "X-Statetap-Migration", value: id)
            if link.fetch == "conditional" {
                if let e = link.etag { r.headers.add(name: "If-None-Match", value: e) }
                if let m = link.lastModified { r.headers.add(name: "If-Modified-Since", value: m) }
            }
            do {
                let response = try await client.execute(r, timeout: .seconds(configuration.fetchTimeoutSeconds))
                var n = 0
                for try await chunk in response.body { n += chunk.readableBytes }
                switch response.status.code {
                // A redirect is not followed (it would leave the cache); the cache holds it like any answer.
                case 200..<300, 300..<304, 305..<400: return .fetched(n)
                case 304: return .notModified
                default:
                    // URLs are browsing history: at debug level only.
                    log.debug("transfer \(id): \(link.url): \(response.status.code)")
                    return .failed("the cache answered \(response.status.code)")
                }
            } catch {
                log.debug("transfer \(id): \(link.url): \(error)")
                return .failed("\(error)")
            }
        case .host(let name):
            do {
                let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(.seconds(2))
                    .connect(host: name, port: configuration.preconnectPort).get()
                try? await channel.close()
                return .connected
            } catch {
                // Server names are browsing history: the name at debug level only.
                log.debug("transfer \(id): pre-connect \(name):\(configuration.preconnectPort): \(error)")
                return .failed("a pre-connect failed: \(type(of: error))")
            }
        }
    }

    // MARK: - Status

    private func update(_ id: String, _ change: (inout AgentTransferStatus) -> Void) {
        transfers.withLock { t in
            guard t[id] != nil, !t[id]!.status.status.isFinal else { return }
            change(&t[id]!.status)
        }
    }

    private func finish(_ id: String, _ status: AgentTransferStatus.Status, detail: String?) {
        var changed = false
        transfers.withLock { t in
            guard t[id] != nil, !t[id]!.status.status.isFinal else { return }
            changed = true
            t[id]!.status.status = status
            t[id]!.status.detail = detail
            t[id]!.status.finishedAtUnixMs = unixMilliseconds()
        }
        guard changed, let s = self.status(id) else { return }
        journalStatus(id)
        let p = s.progress
        switch status {
        case .ready:
            log.info("transfer \(id): ready: \(p.objects) object(s), \(p.bytes) bytes, \(p.notModified) not modified, \(p.hostsConnected) host(s) connected, \(p.failed) failed")
        default:
            log.warning("transfer \(id): \(status.rawValue): \(detail ?? "")")
        }
        report(id, force: true)
    }

    /// Sends the status to the plan's callback (fire and forget, a final status a few times; the control plane
    /// also polls, so a lost report costs time, not the migration).
    private func report(_ id: String, force: Bool) {
        guard let (status, plan) = transfers.withLock({ t in t[id].map { ($0.status, $0.plan) } }),
              let callback = plan.callback,
              let body = try? JSONCoding.encoder.encode(status)
        else { return }
        let token = configuration.token, client = client, attempts = status.status.isFinal ? 3 : 1
        Task {
            for attempt in 0..<attempts {
                var r = HTTPClientRequest(url: callback)
                r.method = .POST
                r.headers.add(name: "Authorization", value: "Bearer \(token)")
                r.headers.add(name: "Content-Type", value: "application/json")
                r.body = .bytes(ByteBuffer(bytes: body))
                if let resp = try? await client.execute(r, timeout: .seconds(2)), resp.status.code < 500 {
                    _ = try? await resp.body.collect(upTo: 1 << 20)
                    return
                }
                try? await Task.sleep(for: .milliseconds(100 << attempt))
            }
        }
    }

    private func journalStatus(_ id: String) {
        guard let journal, let (s, plan) = transfers.withLock({ t in t[id].map { ($0.status, $0.plan) } }),
              let device = IPAddress(plan.device) else { return }
        journal.appendMarker(.migration(MigrationMark(id: id, device: device, from: plan.from, to: plan.to,
                                                      status: s.status.rawValue,
                                                      timestampNanoseconds: realtimeNanoseconds(), detail: s.detail)))
    }

    // MARK: - Routes

    /// The agent's routes, behind bearer-token authentication.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: RequestCounter(metrics: metrics))
        router.add(middleware: BearerAuthMiddleware(token: configuration.token))
        let limit = configuration.maxBodyBytes, planLimit = configuration.maxPlanBytes
        router.put("/v1/transfers/:id") { request, context in
            let id = try context.parameters.require("id")
            let encoding = request.headers[.contentEncoding]?.lowercased()
            guard encoding == nil || encoding == "identity" || encoding == SliceCodec.contentEncoding else {
                throw APIError(.unsupportedMediaType, "Content-Encoding \(quoted(encoding!)) is not supported (use \(SliceCodec.contentEncoding) or none)")
            }
            var raw: [UInt8] = []
            let plan = try await decodeBody(MigrationPlan.self, request, limit: limit) { bytes in
                if encoding == SliceCodec.contentEncoding {
                    switch SliceCodec.decompress(bytes, limit: planLimit) {
                    case .success(let b): raw = b
                    case .failure(let e):
                        throw APIError(e.tooLarge ? .contentTooLarge : .badRequest, e.message)
                    }
                } else {
                    raw = bytes
                }
                return raw
            }
            guard plan.migrationId == id else {
                throw APIError(.badRequest, "migration_id \(quoted(plan.migrationId)) does not match the path's \(quoted(id))")
            }
            guard IPAddress(plan.device) != nil else {
                throw APIError(.badRequest, "device \(quoted(plan.device)) is not an IP address")
            }
            let r = self.receive(plan, raw: raw)
            return try jsonResponse(r.status, status: r.created ? .accepted : .ok)
        }
        router.get("/v1/transfers") { _, _ in try jsonResponse(self.all()) }
        router.get("/v1/transfers/:id") { _, context in
            let id = try context.parameters.require("id")
            guard let s = self.status(id) else { throw APIError(.notFound, "no transfer \(quoted(id))") }
            return try jsonResponse(s)
        }
        router.delete("/v1/transfers/:id") { _, context in
            let id = try context.parameters.require("id")
            return try jsonResponse(self.cancel(id))
        }
        router.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: self.metrics.scrape())))
        }
        return router
    }
}
