import Decode
import Extract
import Foundation
import Hummingbird
import Journal
import MigrationAPI
import NIOCore

/// A device's state as `GET /v1/devices/{id}` shows it: applications with their links as lists (URLs are data,
/// never JSON keys), and the ranking the planner uses.
public struct DeviceView: Codable, Sendable {
    public struct App: Codable, Sendable {
        public var endpoint: String
        public var host: String
        public var proxy: String?
        public var server: String
        public var serverNames: [String]
        public var alpn: [String]
        public var transports: [String]
        public var events: Int
        public var linksEvicted: Int
        public var links: [LinkState]
        public var method: ReconstructionMethod
    }

    public var device: String
    public var firstSeenNs: UInt64
    public var lastSeenNs: UInt64
    public var events: Int
    public var linksTotal: Int
    public var apps: [App]
    public var ranked: [String]
}

extension ControlPlane {
    /// The control plane's routes, behind bearer-token authentication (all of them, `/metrics` too).
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: RequestCounter(metrics: metrics))
        router.add(middleware: BearerAuthMiddleware(token: configuration.token))
        let limit = configuration.maxBodyBytes

        router.get("/v1/edges") { _, _ in try jsonResponse(self.edgeConfiguration) }
        router.put("/v1/edges/:name") { request, context in
            let name = try context.parameters.require("name")
            struct Body: Decodable { var agent: String }
            let body = try await decodeBody(Body.self, request, limit: limit)
            try await self.setEdge(EdgeNode(name: name, agent: body.agent))
            return try jsonResponse(self.edgeConfiguration)
        }
        router.delete("/v1/edges/:name") { _, context in
            let name = try context.parameters.require("name")
            guard self.removeEdge(name) else { throw APIError(.notFound, "no edge \(quoted(name))") }
            return Response(status: .noContent)
        }
        router.put("/v1/cells/:cell") { request, context in
            let cell = try context.parameters.require("cell")
            struct Body: Decodable { var edge: String }
            let body = try await decodeBody(Body.self, request, limit: limit)
            try self.setCell(cell, edge: body.edge)
            return try jsonResponse(self.edgeConfiguration)
        }

        router.post("/v1/migrations") { request, _ in
            let body = try await decodeBody(MigrationRequest.self, request, limit: limit)
            return try self.created(try self.startMigration(body, source: "api"))
        }
        router.get("/v1/migrations") { _, _ in try jsonResponse(self.recentMigrations()) }
        router.get("/v1/migrations/:id") { _, context in
            let id = try context.parameters.require("id")
            guard let v = self.migration(id) else { throw APIError(.notFound, "no migration \(quoted(id))") }
            return try jsonResponse(v)
        }
        router.delete("/v1/migrations/:id") { _, context in
            let id = try context.parameters.require("id")
            guard let v = self.cancel(id, reason: "cancelled through the API") else {
                throw APIError(.notFound, "no migration \(quoted(id))")
            }
            return try jsonResponse(v)
        }
        router.post("/v1/migrations/:id/progress") { request, context in
            let id = try context.parameters.require("id")
            let body = try await decodeBody(AgentTransferStatus.self, request, limit: limit)
            guard body.migrationId == id else {
                throw APIError(.badRequest, "migration_id \(quoted(body.migrationId)) does not match the path's \(quoted(id))")
            }
            guard let v = self.agentReported(id, body) else { throw APIError(.notFound, "no migration \(quoted(id))") }
            return try jsonResponse(v)
        }

        // ETSI MEC notifications (their JSON keeps the spec's camelCase).
        let mecDecoder = JSONDecoder()
        router.post("/v1/notifications/cell-change") { request, _ in
            let n = try await decodeBody(CellChangeNotification.self, request, limit: limit, decoder: mecDecoder)
            return try self.created(try self.cellChange(n))
        }
        router.post("/v1/notifications/mobility-procedure") { request, _ in
            let n = try await decodeBody(MobilityProcedureNotification.self, request, limit: limit, decoder: mecDecoder)
            return try self.created(try self.mobilityProcedure(n))
        }

        // Key-log lines (SSLKEYLOGFILE format) from an edge proxy that cannot write a file the tap can follow.
        router.post("/v1/tls-keys") { request, _ in
            guard let keys = self.configuration.tlsKeys else {
                throw APIError(.notFound, "HTTPS reading is off: start the tap with --tls-keylog FILE or --tls-keys-from-api")
            }
            let bytes = try await bodyBytes(request, limit: limit)
            guard bytes.withUnsafeBytes(validUTF8) else { throw APIError(.badRequest, "the body is not UTF-8 text (key-log lines)") }
            let intake = keys.add(text: Substring(String(decoding: bytes, as: UTF8.self)))
            if intake.accepted == 0, let (line, problem) = intake.firstProblem {
                throw APIError(.badRequest, "no key-log line accepted: line \(line): \(problem)")
            }
            struct Result: Encodable { var accepted: Int; var ignored: Int; var rejected: Int; var firstError: String? }
            let first = intake.firstProblem.map { "line \($0.line): \($0.problem)" }
            return try jsonResponse(Result(accepted: intake.accepted, ignored: intake.ignored, rejected: intake.rejected,
                                           firstError: first))
        }

        router.get("/v1/devices") { _, _ in
            struct Entry: Encodable { var device: String; var lastSeenNs: UInt64 }
            return try jsonResponse(self.store.devices(limit: 1000).map { Entry(device: $0.0.description, lastSeenNs: $0.1) })
        }
        router.get("/v1/devices/:id") { _, context in
            let text = try context.parameters.require("id")
            guard let device = IPAddress(text) else {
                throw APIError(.badRequest, "device \(quoted(text)) is not an IPv4 or IPv6 address")
            }
            guard let view = self.deviceView(device) else { throw APIError(.notFound, "no state for device \(text)") }
            return try jsonResponse(view)
        }

        router.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: self.metrics.scrape())))
        }
        return router
    }

    public func deviceView(_ device: IPAddress) -> DeviceView? {
        guard let s = store.snapshot(device: device) else { return nil }
        let planner = configuration.planner
        let apps = s.apps.map { a in
            DeviceView.App(endpoint: a.key.endpoint, host: a.key.host, proxy: a.proxy, server: a.server,
                           serverNames: a.serverNames, alpn: a.alpn, transports: a.transports, events: a.events,
                           linksEvicted: a.linksEvicted, links: a.links.values.sorted { $0.url < $1.url },
                           method: planner.method(for: a))
        }
        return DeviceView(device: s.device, firstSeenNs: s.firstSeen, lastSeenNs: s.lastSeen, events: s.events,
                          linksTotal: apps.reduce(0) { $0 + $1.links.count }, apps: apps,
                          ranked: store.rankedLinks(device: device, limit: 20).map(\.link.url))
    }

    /// 202 and the migration (with its Location) for a new one; 200 for one that was already running or a status
    /// signal.
    private func created(_ r: (view: MigrationView, created: Bool)) throws -> Response {
        var headers = HTTPFields()
        headers[.location] = "/v1/migrations/\(r.view.id)"
        return try jsonResponse(r.view, status: r.created ? .accepted : .ok, extra: headers)
    }
}

/// Counts every request by route and status (`statetap_api_requests_total`), errors included.
struct RequestCounter<Context: RequestContext>: RouterMiddleware {
    let metrics: ServiceMetrics

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response
    {
        do {
            let response = try await next(request, context)
            metrics.request(route: context.endpointPath ?? "unmatched", status: Int(response.status.code))
            return response
        } catch let e as HTTPResponseError {
            metrics.request(route: context.endpointPath ?? "unmatched", status: Int(e.status.code))
            throw e
        }
    }
}
