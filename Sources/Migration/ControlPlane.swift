import AsyncHTTPClient
import Decode
import Foundation
import Hummingbird
import Journal
import Logging
import NIOCore
import Extract
import Rings
import Synchronization
import MigrationAPI

/// Settings of the control plane.
public struct ControlPlaneConfiguration: Sendable {
    public var token: String
    /// The control plane's own base URL as agents reach it (progress reports); nil: agents do not report, the
    /// control plane polls them.
    public var advertiseURL: String?
    /// Deadline of a migration whose signal gives none.
    public var defaultDeadlineSeconds: Double = 30
    /// Farthest deadline a signal may set (a migration retries until its deadline: not for days).
    public var maxDeadlineSeconds: Double = 3600
    /// Migrations not yet finished at most; a signal past it is answered 429 with `Retry-After` (counted in
    /// `statetap_migrations_refused_total{reason="in_flight_limit"}`). Each costs a task and ~24 KB with an empty plan
    /// (measured: 4,096 in flight took 96 MB of RSS), more with its links.
    public var maxMigrationsInFlight = 4096
    public var planner = Planner()
    /// Largest request body accepted (413 beyond).
    public var maxBodyBytes = 1 << 20
    /// Transfer retries: first wait, doubled up to the maximum, ±20% jitter, until the deadline.
    public var retryInitialMilliseconds = 100
    public var retryMaxMilliseconds = 2000
    /// How often the agent is asked for its status while it prefetches (besides its own reports).
    public var pollMilliseconds = 250
    /// Which agent URLs may be configured (they receive the token): schemes and address ranges.
    public var agents = AgentPolicy()
    /// Where `POST /v1/tls-keys` puts the secrets it is given; nil: the route answers that HTTPS reading is off.
    public var tlsKeys: TLSKeyStore?

    public init(token: String) { self.token = token }
}

/// The control plane: migration signals in (native API, ETSI MEC 012 cell changes, MEC 021 mobility
/// procedures), a plan per application from the state store, the transfer to the destination agent with retries
/// until the deadline, and the status of every migration for anyone to query. Plans and status changes are
/// journaled. Runs on Swift concurrency, beside the capture, never on the packet path.
public final class ControlPlane: Sendable {
    public let store: StateStore
    public let configuration: ControlPlaneConfiguration
    public let metrics: ServiceMetrics
    private let edges: Mutex<EdgeConfiguration>
    private let migrations = Mutex<Migrations>(Migrations())
    private let journal: (@Sendable (JournalRecord) -> Void)?
    private let client: HTTPClient
    private let log: Logger
    /// Per agent: whether transfers reach it. While one does not answer (circuit open), one transfer at a time
    /// tries it (a probe), after a wait doubled per failed probe; the others wait for the probe's outcome instead
    /// of each retrying. A line is logged when an agent stops answering and when it answers again, not per try.
    private let circuits = Mutex<[String: Circuit]>([:])

    private struct Circuit {
        var failures = 0
        var probing = false
        var nextProbe = ContinuousClock.now
        var backoffMilliseconds = 0
        var open: Bool { failures > 0 }
    }

    private struct Migrations {
        var byID: [String: Entry] = [:]
        /// The latest migration of each device (for MEC signals that name the device only).
        var latestByDevice: [String: String] = [:]
        var order: [String] = []
        /// Migrations not in a final status.
        var inFlight = 0
    }

    private struct Entry {
        var view: MigrationView
        var started: ContinuousClock.Instant
        var deadline: Date
        var agent: String
        var task: Task<Void, Never>?
    }

    public init(store: StateStore, edges: EdgeConfiguration, configuration: ControlPlaneConfiguration,
                metrics: ServiceMetrics = ServiceMetrics(), journal: (@Sendable (JournalRecord) -> Void)? = nil,
                client: HTTPClient = .failingFast, log: Logger = Logger(label: "statetap.control"))
    {
        self.store = store
        self.edges = Mutex(edges)
        self.configuration = configuration
        self.metrics = metrics
        self.journal = journal
        self.client = client
        self.log = log
    }

    // MARK: - Edges and cells

    public var edgeConfiguration: EdgeConfiguration { edges.withLock { $0 } }

    /// Registers or replaces an edge; its agent's URL must be one `configuration.agents` allows (a name: every
    /// address it resolves to, now).
    public func setEdge(_ edge: EdgeNode) async throws(APIError) {
        if let p = EdgeConfiguration.nameProblem(edge.name) { throw APIError(.badRequest, p) }
        if let p = await agentProblem(edge.agent, policy: configuration.agents) {
            throw APIError(.unprocessableContent, "agent \(p)")
        }
        try edges.withLock { c throws(APIError) in
            let replaces = c.edges.contains { $0.name == edge.name }
            guard replaces || c.edges.count < EdgeConfiguration.maxEdges else {
                throw APIError(.unprocessableContent, "\(EdgeConfiguration.maxEdges) edges are registered: at most that many")
            }
            c.edges.removeAll { $0.name == edge.name }
            c.edges.append(edge)
        }
    }

    public func removeEdge(_ name: String) -> Bool {
        edges.withLock { c in
            let before = c.edges.count
            c.edges.removeAll { $0.name == name }
            c.cells = c.cells.filter { $0.value != name }
            return c.edges.count != before
        }
    }

    public func setCell(_ cell: String, edge: String) throws(APIError) {
        if let p = EdgeConfiguration.nameProblem(cell, cell: true) { throw APIError(.badRequest, p) }
        try edges.withLock { c throws(APIError) in
            guard c.cells[cell] != nil || c.cells.count < EdgeConfiguration.maxCells else {
                throw APIError(.unprocessableContent, "\(EdgeConfiguration.maxCells) cells are mapped: at most that many")
            }
            guard c.edges.contains(where: { $0.name == edge }) else {
                throw APIError(.unprocessableContent, "unknown edge \(quoted(edge)) (register it with PUT /v1/edges/\(edge))")
            }
            c.cells[cell] = edge
        }
    }

    private func edge(named name: String) -> EdgeNode? { edges.withLock { c in c.edges.first { $0.name == name } } }

    private func edge(ofCell cell: String) -> String? { edges.withLock { $0.cells[cell] } }

    // MARK: - Migrations

    /// Starts a migration (idempotent: a second signal for a device already migrating to the same edge returns
    /// the running one; `created` tells which).
    public func startMigration(_ request: MigrationRequest, source: String) throws(APIError) -> (view: MigrationView, created: Bool) {
        guard let device = IPAddress(request.device) else {
            throw APIError(.badRequest, "device \(quoted(request.device)) is not an IPv4 or IPv6 address")
        }
        guard let target = edge(named: request.to) else {
            throw APIError(.unprocessableContent, "unknown destination edge \(quoted(request.to))")
        }
        let now = Date()
        var deadline = now.addingTimeInterval(configuration.defaultDeadlineSeconds)
        if let d = request.deadline {
            guard let parsed = parseRFC3339(d) else {
                throw APIError(.badRequest, "deadline \(quoted(d)) is not an RFC 3339 time (e.g. 2026-11-25T10:00:00Z)")
            }
            guard parsed > now else { throw APIError(.unprocessableContent, "deadline \(quoted(d)) has passed") }
            guard parsed.timeIntervalSince(now) <= configuration.maxDeadlineSeconds else {
                throw APIError(.unprocessableContent, "deadline \(quoted(d)) is more than \(Int(configuration.maxDeadlineSeconds)) s away")
            }
            deadline = parsed
        }
        let deviceText = device.description
        let from = request.from ?? ""
        let limit = configuration.maxMigrationsInFlight
        let admitted: (MigrationView, Bool, String?)? = migrations.withLock { m in
            var superseded: String?
            if let id = m.latestByDevice[deviceText], let e = m.byID[id], !e.view.status.isFinal {
                if e.view.to == target.name { return (e.view, false, nil) }
                superseded = id
            }
            // A migration that supersedes another takes its place; any other waits for room.
            if superseded == nil && m.inFlight >= limit { return nil }
            m.inFlight += 1
            let id = UUID().uuidString.lowercased()
            var timings = MigrationTimings()
            timings.plannedMs = nil
            let view = MigrationView(id: id, device: deviceText, from: from, to: target.name, source: source,
                                     status: .planned, detail: nil, createdAt: rfc3339(now), deadline: rfc3339(deadline),
                                     timings: timings, plan: PlanSummary(), transfer: TransferSummary(),
                                     prefetch: PrefetchProgress())
            m.byID[id] = Entry(view: view, started: .now, deadline: deadline, agent: target.agent, task: nil)
            m.latestByDevice[deviceText] = id
            m.order.append(id)
            if m.order.count > 10_000 {
                // The oldest finished migrations go, a thousand at a time (one running migration stops nothing).
                var dropped = 0
                m.order.removeAll { old in
                    guard dropped < 1000, m.byID[old]?.view.status.isFinal ?? true else { return false }
                    if let v = m.byID.removeValue(forKey: old), m.latestByDevice[v.view.device] == old {
                        m.latestByDevice[v.view.device] = nil
                    }
                    dropped += 1
                    return true
                }
            }
            return (view, true, superseded)
        }
        guard let result = admitted else {
            metrics.migrationRefused(reason: "in_flight_limit")
            // Migrations last until their deadline at most: by then room has been made.
            let retry = max(1, Int(min(configuration.defaultDeadlineSeconds, 30).rounded(.up)))
            var headers = HTTPFields()
            headers[.retryAfter] = String(retry)
            throw APIError(.tooManyRequests, "\(limit) migrations are in flight (the limit, --max-migrations): try again later",
                           headers: headers)
        }
        guard result.1 else { return (result.0, false) }
        let id = result.0.id
        if let old = result.2 { _ = cancel(old, reason: "superseded by migration \(id) to \(target.name)") }
        metrics.migrationStarted(source: source)
        log.info("migration \(id): device \(deviceText) \(from.isEmpty ? "?" : from) -> \(target.name) (\(source)), deadline \(rfc3339(deadline))")
        let task = Task { [self] in await run(id: id, device: device, agent: target.agent, deadline: deadline) }
        // A cancellation that came before the task was stored finds no task: the task sees the final status.
        migrations.withLock { $0.byID[id]?.task = task }
        return (result.0, true)
    }

    /// Cancels every running migration's work (at shutdown, before the journal closes).
    public func shutdown() {
        let tasks = migrations.withLock { m in m.byID.values.compactMap(\.task) }
        for t in tasks { t.cancel() }
    }

    public func migration(_ id: String) -> MigrationView? { migrations.withLock { $0.byID[id]?.view } }

    public func recentMigrations(limit: Int = 100) -> [MigrationView] {
        migrations.withLock { m in m.order.suffix(limit).reversed().compactMap { m.byID[$0]?.view } }
    }

    public func latestMigration(device: String) -> MigrationView? {
        migrations.withLock { m in m.latestByDevice[device].flatMap { m.byID[$0]?.view } }
    }

    /// Cancels a migration that has not finished: the transfer stops, the agent is told to stop prefetching.
    public func cancel(_ id: String, reason: String) -> MigrationView? {
        let (entry, changed) = migrations.withLock { m -> (Entry?, Bool) in
            guard let e = m.byID[id] else { return (nil, false) }
            if e.view.status.isFinal { return (e, false) }
            return (e, true)
        }
        guard let entry else { return nil }
        guard changed else { return entry.view }
        entry.task?.cancel()
        let view = setStatus(id, .cancelled, detail: reason)
        tellAgentToStop(id, agent: entry.agent)
        return view
    }

    /// DELETE to the agent, a few times at most (it keeps a tombstone for an id it never saw, so a transfer that
    /// arrives after the cancellation starts nothing).
    private func tellAgentToStop(_ id: String, agent: String) {
        let token = configuration.token, client = client, log = log
        Task {
            for attempt in 0..<3 {
                var r = HTTPClientRequest(url: agent + "/v1/transfers/" + id)
                r.method = .DELETE
                r.headers.add(name: "Authorization", value: "Bearer \(token)")
                if let resp = try? await client.execute(r, timeout: .seconds(2)), resp.status.code < 500 { return }
                try? await Task.sleep(for: .milliseconds(200 << attempt))
            }
            log.warning("migration \(id): the agent at \(agent) did not acknowledge the cancellation")
        }
    }

    /// The handover is done (MEC COMPLETED): a ready migration becomes `completed`; one still running keeps
    /// going and says so.
    public func complete(_ id: String) -> MigrationView? {
        let status = migration(id)?.status
        switch status {
        case nil: return nil
        case .ready?: return setStatus(id, .completed, detail: nil)
        case let s? where s.isFinal: return migration(id)
        default:
            return update(id) { e in
                e.view.timings.completedMs = Self.ms(since: e.started)
                e.view.detail = "the handover completed before the destination was ready"
            }
        }
    }

    /// A progress report of the agent (its callback, or an answer to our poll).
    public func agentReported(_ id: String, _ status: AgentTransferStatus) -> MigrationView? {
        guard let current = migration(id) else { return nil }
        if current.status.isFinal { return current }
        // Checked again under the lock: a late report must not overwrite the counts of a finished migration.
        // Reports race each other (callbacks and polls): counts only go forward.
        _ = update(id) { e in
            if !e.view.status.isFinal && status.progress.done >= e.view.prefetch.done { e.view.prefetch = status.progress }
        }
        switch status.status {
        case .received, .prefetching:
            return current.status == .prefetching ? migration(id) : setStatus(id, .prefetching, detail: nil)
        case .ready: return setStatus(id, .ready, detail: nil)
        case .failed: return setStatus(id, .failed, detail: "agent: \(status.detail ?? "failed")")
        case .cancelled: return setStatus(id, .cancelled, detail: "the agent cancelled it")
        }
    }

    // MARK: - MEC signals

    /// MEC 012 `CellChangeNotification`.
    public func cellChange(_ n: CellChangeNotification) throws(APIError) -> (view: MigrationView, created: Bool) {
        let names = ["", "IN_PREPARATION", "IN_EXECUTION", "COMPLETED", "REJECTED", "CANCELLED"]
        guard let status = n.hoStatus.number(names: names), (1...5).contains(status) else {
            throw APIError(.badRequest, "hoStatus must be 1-5 or IN_PREPARATION, IN_EXECUTION, COMPLETED, REJECTED, CANCELLED")
        }
        let device = try Self.device(n.associateId)
        switch status {
        case 1:
            guard let src = n.srcEcgi?.cellId else { throw APIError(.badRequest, "missing field 'srcEcgi.cellId'") }
            guard let trg = n.trgEcgi?.first?.cellId else { throw APIError(.badRequest, "missing field 'trgEcgi[0].cellId'") }
            guard let to = edge(ofCell: trg) else {
                throw APIError(.unprocessableContent, "target cell \(quoted(trg)) maps to no edge (PUT /v1/cells/\(trg))")
            }
            let from = edge(ofCell: src) ?? ""
            if from == to {
                throw APIError(.unprocessableContent, "cells \(quoted(src)) and \(quoted(trg)) are on the same edge \(quoted(to)): nothing to migrate")
            }
            return try startMigration(MigrationRequest(device: device, from: from, to: to), source: "mec012")
        case 2:
            guard let v = latestMigration(device: device) else {
                throw APIError(.notFound, "no migration for device \(device)")
            }
            return (v, false)
        case 3:
            guard let v = latestMigration(device: device), let done = complete(v.id) else {
                throw APIError(.notFound, "no migration for device \(device)")
            }
            return (done, false)
        default:
            guard let v = latestMigration(device: device),
                  let c = cancel(v.id, reason: status == 4 ? "handover rejected (MEC 012)" : "handover cancelled (MEC 012)")
            else { throw APIError(.notFound, "no migration for device \(device)") }
            return (c, false)
        }
    }

    /// MEC 021 `MobilityProcedureNotification`.
    public func mobilityProcedure(_ n: MobilityProcedureNotification) throws(APIError) -> (view: MigrationView, created: Bool) {
        let names = ["", "INTERHOST_MOVEOUT_TRIGGERED", "INTERHOST_MOVEOUT_COMPLETED", "INTERHOST_MOVEOUT_FAILED"]
        guard let status = n.mobilityStatus.number(names: names), (1...3).contains(status) else {
            throw APIError(.badRequest, "mobilityStatus must be 1-3 or INTERHOST_MOVEOUT_TRIGGERED, INTERHOST_MOVEOUT_COMPLETED, INTERHOST_MOVEOUT_FAILED")
        }
        let device = try Self.device(n.associateId)
        switch status {
        case 1:
            let config = edgeConfiguration
            let target = n.targetAppInfo
            var to: String?
            if let name = target?.appInstanceId, config.edges.contains(where: { $0.name == name }) { to = name }
            if to == nil, let hosts = target?.commInterface?.ipAddresses?.map(\.host) {
                to = config.edges.first { e in hosts.contains(URLParts(e.agent).host) }?.name
            }
            guard let to else {
                throw APIError(.unprocessableContent, "targetAppInfo names no known edge (appInstanceId = an edge name, or commInterface.ipAddresses = its agent's address)")
            }
            return try startMigration(MigrationRequest(device: device, to: to), source: "mec021")
        case 2:
            guard let v = latestMigration(device: device), let done = complete(v.id) else {
                throw APIError(.notFound, "no migration for device \(device)")
            }
            return (done, false)
        default:
            guard let v = latestMigration(device: device), let c = cancel(v.id, reason: "move-out failed (MEC 021)") else {
                throw APIError(.notFound, "no migration for device \(device)")
            }
            return (c, false)
        }
    }

    private static func device(_ ids: [AssociateId]?) throws(APIError) -> String {
        let names = ["", "UE_IPV4_ADDRESS", "UE_IPV6_ADDRESS"]
        guard let ids, !ids.isEmpty else { throw APIError(.badRequest, "missing field 'associateId'") }
        for id in ids {
            guard let t = id.type.number(names: names), t == 1 || t == 2 else { continue }
            guard IPAddress(id.value) != nil else {
                throw APIError(.badRequest, "associateId value \(quoted(id.value)) is not an IP address")
            }
            return id.value
        }
        throw APIError(.unprocessableContent, "no associateId of type UE_IPV4_ADDRESS (1) or UE_IPV6_ADDRESS (2): statetap knows devices by address")
    }

    // MARK: - Running one migration

    private func run(id: String, device: IPAddress, agent: String, deadline: Date) async {
        // Plan.
        guard let view = migration(id) else { return }
        let snapshot = store.snapshot(device: device)
        let ranked = store.rankedLinks(device: device)
        let plan = configuration.planner.plan(
            migrationID: id, device: device.description, apps: snapshot?.apps ?? [], ranked: ranked, from: view.from, to: view.to,
            deadlineUnixMs: unixMilliseconds(deadline),
            callback: configuration.advertiseURL.map { $0 + "/v1/migrations/\(id)/progress" })
        let raw: [UInt8]
        do { raw = Array(try JSONCoding.encoder.encode(plan)) } catch {
            _ = setStatus(id, .failed, detail: "the plan could not be encoded: \(error)")
            return
        }
        journal?(.plan(PlanMark(migrationID: id, device: device, timestampNanoseconds: realtimeNanoseconds(), body: raw)))
        let body = SliceCodec.compress(raw)
        _ = update(id) { e in
            e.view.plan = plan.summary
            e.view.timings.plannedMs = Self.ms(since: e.started)
            e.view.transfer.rawBytes = raw.count
            e.view.transfer.compressedBytes = body.count
        }
        journalStatus(id)
        log.info("migration \(id): planned \(plan.summary.apps) app(s), \(plan.summary.links) link(s), \(plan.summary.hosts) host(s); \(plan.summary.skippedUncacheable) uncacheable link(s) left out")

        // Transfer, retried with backoff until the deadline.
        _ = setStatus(id, .transferring, detail: nil)
        var wait = configuration.retryInitialMilliseconds
        var attempt = 0
        // The outer loop sends the plan again when the agent no longer knows it (it restarted before writing it).
        resend: while true {
        transfer: while true {
            if stopped(id) { return }
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 {
                // With no attempt made (a deadline already past when the transfer began), say so rather than
                // "last error: none".
                let detail = attempt == 0
                    ? "deadline passed before the plan could be sent to the agent (no attempt made)"
                    : "deadline passed during the transfer after \(attempt) attempt(s); last error: "
                        + (migration(id)?.transfer.lastError ?? "none reported")
                _ = setStatus(id, .failed, detail: detail)
                return
            }
            // An agent that does not answer is tried by one transfer at a time: the others wait for its outcome.
            let admission = admitAttempt(agent: agent)
            if case .wait(let ms) = admission {
                let sleep = min(Double(ms) * Double.random(in: 0.8...1.2), max(deadline.timeIntervalSinceNow * 1000, 0))
                do { try await Task.sleep(for: .milliseconds(Int64(sleep.rounded(.up)))) } catch { return }
                continue transfer
            }
            attempt += 1
            var r = HTTPClientRequest(url: agent + "/v1/transfers/" + id)
            r.method = .PUT
            r.headers.add(name: "Authorization", value: "Bearer \(configuration.token)")
            r.headers.add(name: "Content-Type", value: "application/json")
            r.headers.add(name: "Content-Encoding", value: SliceCodec.contentEncoding)
            r.body = .bytes(ByteBuffer(bytes: body))
            var failure: String
            do {
                let timeout = TimeAmount.milliseconds(Int64(min(remaining, 5) * 1000))
                let response = try await client.execute(r, timeout: timeout)
                let answer = try await response.body.collect(upTo: 1 << 20)
                let code = Int(response.status.code)
                if (200..<300).contains(code) {
                    attemptEnded(agent: agent, failure: nil)
                    _ = update(id) { $0.view.transfer.attempts = attempt; $0.view.transfer.lastError = nil }
                    if let s = try? JSONCoding.decoder.decode(AgentTransferStatus.self, from: Data(answer.readableBytesView)) {
                        _ = agentReported(id, s)
                    }
                    break transfer
                }
                failure = "agent answered \(code): \(String(decoding: answer.readableBytesView.prefix(300), as: UTF8.self))"
                if (400..<500).contains(code) && code != 408 && code != 429 {
                    attemptEnded(agent: agent, failure: nil)  // it answers: the refusal is this transfer's
                    _ = update(id) { $0.view.transfer.attempts = attempt; $0.view.transfer.lastError = failure }
                    _ = setStatus(id, .failed, detail: "the agent refused the transfer: \(failure)")
                    return
                }
            } catch {
                if Task.isCancelled { attemptEnded(agent: agent, failure: nil, cancelled: true); return }
                failure = "\(error)"
            }
            attemptEnded(agent: agent, failure: failure)
            _ = update(id) { $0.view.transfer.attempts = attempt; $0.view.transfer.lastError = failure }
            log.debug("migration \(id): transfer attempt \(attempt) to \(agent) failed: \(failure); retrying")
            let jitter = Double.random(in: 0.8...1.2)
            let sleep = min(Double(wait) * jitter / 1000, max(deadline.timeIntervalSinceNow, 0))
            // Rounded up: a wait cut short by the truncation would leave a last attempt with no time (its error,
            // a timeout, would hide the real one).
            do { try await Task.sleep(for: .milliseconds(Int64((sleep * 1000).rounded(.up)))) } catch { return }
            wait = min(wait * 2, configuration.retryMaxMilliseconds)
        }

        if stopped(id) {
            // Cancelled while the plan was on its way: the agent may have taken it after our DELETE.
            tellAgentToStop(id, agent: agent)
            return
        }

        // Prefetching: the agent reports; we also ask it, in case a report is lost.
        if migration(id)?.status == .transferring { _ = setStatus(id, .prefetching, detail: nil) }
        while let s = migration(id)?.status, !s.isFinal {
            if deadline.timeIntervalSinceNow <= 0 {
                let v = migration(id)
                let p = v?.prefetch ?? PrefetchProgress()
                let last = v?.transfer.lastError.map { "; last error: \($0)" } ?? ""
                _ = setStatus(id, .failed, detail: "deadline passed while the agent prefetched (\(p.done) of \(p.total) done)\(last)")
                return
            }
            let pause = min(Double(configuration.pollMilliseconds) / 1000, max(deadline.timeIntervalSinceNow, 0.001))
            do { try await Task.sleep(for: .milliseconds(Int64(pause * 1000))) } catch { return }
            var r = HTTPClientRequest(url: agent + "/v1/transfers/" + id)
            r.headers.add(name: "Authorization", value: "Bearer \(configuration.token)")
            do {
                let response = try await client.execute(r, timeout: .seconds(2))
                let answer = try await response.body.collect(upTo: 1 << 20)
                switch response.status.code {
                case 200:
                    if let status = try? JSONCoding.decoder.decode(AgentTransferStatus.self, from: Data(answer.readableBytesView)) {
                        _ = agentReported(id, status)
                    }
                case 404:
                    log.notice("migration \(id): the agent no longer knows the plan (it restarted?): sending it again")
                    _ = update(id) { $0.view.transfer.lastError = "the agent lost the plan (404); sent again" }
                    continue resend
                default:
                    let code = response.status.code
                    _ = update(id) { $0.view.transfer.lastError = "status poll: agent answered \(code)" }
                }
            } catch {
                if stopped(id) { return }
                _ = update(id) { $0.view.transfer.lastError = "status poll: \(error)" }
            }
        }
        return
        }
    }

    private func stopped(_ id: String) -> Bool { Task.isCancelled || migration(id)?.status.isFinal != false }

    // MARK: - Status bookkeeping

    private static func ms(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        let ms = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
        return (ms * 1000).rounded() / 1000
    }

    private enum Admission { case go, wait(milliseconds: Int) }

    /// Whether a transfer may try `agent` now: always while it answers; while it does not, only as the one probe
    /// once its wait is over (the others are told how long to wait before asking again).
    private func admitAttempt(agent: String) -> Admission {
        circuits.withLock { all in
            guard var c = all[agent], c.open else { return .go }
            let now = ContinuousClock.now
            if !c.probing && now >= c.nextProbe {
                c.probing = true
                all[agent] = c
                return .go
            }
            let untilProbe = c.nextProbe > now ? Self.ms(c.nextProbe - now) : 0
            return .wait(milliseconds: max(untilProbe, configuration.retryInitialMilliseconds))
        }
    }

    /// Records an attempt's outcome for its agent's circuit; logs when the agent stops or starts answering.
    private func attemptEnded(agent: String, failure: String?, cancelled: Bool = false) {
        enum Change { case none, opened, closed(Int) }
        let change: Change = circuits.withLock { all in
            var c = all[agent] ?? Circuit()
            defer { all[agent] = c.open ? c : nil }
            c.probing = false
            if cancelled { return .none }
            guard failure != nil else {
                let failures = c.failures
                c.failures = 0
                return failures > 0 ? .closed(failures) : .none
            }
            c.failures += 1
            c.backoffMilliseconds = c.backoffMilliseconds == 0
                ? configuration.retryInitialMilliseconds : min(c.backoffMilliseconds * 2, configuration.retryMaxMilliseconds)
            c.nextProbe = .now + .milliseconds(Double(c.backoffMilliseconds) * Double.random(in: 0.8...1.2))
            return c.failures == 1 ? .opened : .none
        }
        switch change {
        case .opened:
            log.warning("agent \(agent) does not answer (\(failure ?? "")): its transfers wait, one tries it at a time, backing off to \(configuration.retryMaxMilliseconds) ms")
        case .closed(let n):
            log.notice("agent \(agent) answers again after \(n) failed attempt(s)")
        case .none: break
        }
    }

    private static func ms(_ d: Duration) -> Int {
        let (s, attoseconds) = d.components
        return Int(s) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    private func update(_ id: String, _ change: (inout Entry) -> Void) -> MigrationView? {
        migrations.withLock { m in
            guard m.byID[id] != nil else { return nil }
            change(&m.byID[id]!)
            return m.byID[id]!.view
        }
    }

    /// Moves a migration to `status` (never out of a final one), times the step, journals and counts it.
    @discardableResult
    private func setStatus(_ id: String, _ status: MigrationStatus, detail: String?) -> MigrationView? {
        var changed = false
        var ended = false
        let view = update(id) { e in
            guard !e.view.status.isFinal || (e.view.status == .ready && status == .completed) else { return }
            guard e.view.status != status else { return }
            changed = true
            ended = !e.view.status.isFinal && status.isFinal
            e.view.status = status
            if let detail { e.view.detail = detail }
            let t = Self.ms(since: e.started)
            switch status {
            case .planned: e.view.timings.plannedMs = t
            case .transferring: e.view.timings.transferringMs = t
            case .prefetching: e.view.timings.prefetchingMs = t
            case .ready: e.view.timings.readyMs = t
            case .failed: e.view.timings.failedMs = t
            case .cancelled: e.view.timings.cancelledMs = t
            case .completed: e.view.timings.completedMs = t
            }
        }
        guard changed, let view else { return view }
        if ended { migrations.withLock { $0.inFlight -= 1 } }
        journalStatus(id)
        if status.isFinal && status != .completed {
            metrics.migrationFinished(status: status.rawValue, signalToReadyMs: view.timings.readyMs)
        }
        switch status {
        case .failed: log.warning("migration \(id): failed: \(view.detail ?? "")")
        case .ready:
            log.info("migration \(id): ready in \(view.timings.readyMs ?? 0) ms (\(view.prefetch.objects) object(s), \(view.prefetch.bytes) bytes prefetched)")
        default: log.info("migration \(id): \(status.rawValue)\(detail.map { ": \($0)" } ?? "")")
        }
        return view
    }

    private func journalStatus(_ id: String) {
        guard let journal, let v = migration(id), let device = IPAddress(v.device) else { return }
        journal(.migration(MigrationMark(id: id, device: device, from: v.from, to: v.to, status: v.status.rawValue,
                                         timestampNanoseconds: realtimeNanoseconds(), detail: v.detail)))
    }
}

