import AsyncHTTPClient
import Decode
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Extract
import ServiceLifecycle
import Synchronization
import Testing
@testable import Journal
@testable import Migration

// Shared pieces of the migration tests: real servers on 127.0.0.1 (port 0), a counting edge cache, state built
// from capture events, and bounded waits.

let testToken = "migration-tests-token-0123456789"
let testDevice = "10.45.0.9"

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A logger that stays silent unless something is badly wrong (the services log every step at info).
func quietLogger(_ label: String) -> Logger {
    var l = Logger(label: label)
    l.logLevel = .critical
    return l
}

// MARK: - Servers

/// Runs `router` with the project's own `makeServer` on 127.0.0.1 (`port` 0: a free one) while `body` runs, then
/// shuts it down gracefully. `body` gets the bound port.
func withServer<T>(_ router: Router<BasicRequestContext>, port: Int = 0, limits: ConnectionLimits = ConnectionLimits(),
                   statistics: ConnectionStatistics = ConnectionStatistics(),
                   _ body: (Int) async throws -> T) async throws -> T
{
    let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
    let server = try makeServer(router: router, listen: ListenConfiguration(host: "127.0.0.1", port: port),
                                name: "statetap-test", logger: quietLogger("test.server"), limits: limits,
                                statistics: statistics) { continuation.yield($0) }
    let group = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: quietLogger("test.group")))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask {
            defer { continuation.finish() }
            try await group.run()
        }
        var iterator = ports.makeAsyncIterator()
        guard let bound = await iterator.next() else {
            try await tasks.waitForAll()
            throw TestFailure("the server on 127.0.0.1:\(port) stopped before listening")
        }
        do {
            let value = try await body(bound)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return value
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
    }
}

/// A loopback port nothing listens on right now (bound to port 0, read back, closed).
func unusedPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { s in
            bind(fd, s, len) == 0 && getsockname(fd, s, &len) == 0
        }
    }
    guard ok else { throw TestFailure("bind/getsockname: errno \(errno)") }
    return Int(UInt16(bigEndian: addr.sin_port))
}

// MARK: - The destination's edge cache

/// An edge cache on loopback: answers any GET with a small object, `Cache-Control: max-age=600` and an ETag
/// (`"v1"`; `If-None-Match: "v1"` gets 304), counting requests per path and query, optionally slowly.
final class TestCache: Sendable {
    let delay: Duration
    private let counts = Mutex<[String: Int]>([:])
    private let hostHeaders = Mutex<Set<String>>([])

    init(delay: Duration = .zero) { self.delay = delay }

    /// Requests per path (with query).
    var requests: [String: Int] { counts.withLock { $0 } }
    var total: Int { counts.withLock { $0.values.reduce(0, +) } }
    var hosts: Set<String> { hostHeaders.withLock { $0 } }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("**") { request, _ -> Response in
            let path = request.head.path ?? "/"
            self.counts.withLock { $0[path, default: 0] += 1 }
            if let host = request.head.authority { self.hostHeaders.withLock { _ = $0.insert(host) } }
            if self.delay > .zero { try await Task.sleep(for: self.delay) }
            var headers = HTTPFields()
            headers[.cacheControl] = "max-age=600"
            headers[.eTag] = "\"v1\""
            if request.headers[.ifNoneMatch] == "\"v1\"" { return Response(status: .notModified, headers: headers) }
            headers[.contentType] = "text/plain"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "object at \(path)\n")))
        }
        return router
    }
}

// MARK: - Clients

struct HTTPResult {
    var status: Int
    var headers: HTTPHeaders
    var bytes: [UInt8]
    var text: String { String(decoding: bytes, as: UTF8.self) }

    func decode<T: Decodable>(_ type: T.Type, decoder: JSONDecoder = JSONCoding.decoder) throws -> T {
        try decoder.decode(T.self, from: Data(bytes))
    }
}

/// One request to a live server with AsyncHTTPClient (bounded by a 5 s timeout).
func http(_ method: HTTPMethod, _ url: String, token: String? = testToken, body: [UInt8]? = nil,
          headers: [(String, String)] = []) async throws -> HTTPResult
{
    var r = HTTPClientRequest(url: url)
    r.method = method
    if let token { r.headers.add(name: "Authorization", value: "Bearer \(token)") }
    for (name, value) in headers { r.headers.add(name: name, value: value) }
    if let body { r.body = .bytes(ByteBuffer(bytes: body)) }
    let response = try await HTTPClient.shared.execute(r, timeout: .seconds(5))
    let buffer = try await response.body.collect(upTo: 8 << 20)
    return HTTPResult(status: Int(response.status.code), headers: response.headers, bytes: Array(buffer.readableBytesView))
}

/// Headers of an authenticated request to a router under test.
func auth(_ extra: HTTPFields = [:]) -> HTTPFields {
    var h = extra
    h[.authorization] = "Bearer \(testToken)"
    return h
}

func json(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

extension ByteBuffer {
    var text: String { String(buffer: self) }
}

/// Polls `probe` every 20 ms until it returns a value, for at most `seconds`.
func eventually<T>(within seconds: Double = 10, _ what: String,
                   _ probe: () async throws -> T?) async throws -> T
{
    let end = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while true {
        if let v = try await probe() { return v }
        guard ContinuousClock.now < end else { throw TestFailure("timed out after \(seconds) s waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

// MARK: - State

let baseNs: UInt64 = 1_700_000_000_000_000_000

/// A web link the capture saw: `GET url` answered `status` with the given cacheability and validators, through
/// the proxy `edge-a` (which makes the application `edge-a` / `host`).
func webLinkEvent(_ url: String, host: String = "cdn.example", at i: Int, device: String = testDevice,
                  method: String = "GET", status: Int? = 200, cacheable: Bool?, etag: String? = nil,
                  contentLength: Int? = nil) -> StateEvent
{
    let d = IPAddress(device)!
    var e = StateEvent(kind: .webLink, timestampNanoseconds: baseNs + UInt64(i) * 1_000_000, device: d, client: d,
                       clientPort: 40000, server: IPAddress("203.0.113.80")!, serverPort: 80, vlans: [], teid: nil)
    e.method = method
    e.url = url
    e.host = host
    e.httpVersion = "HTTP/1.1"
    e.status = status
    if status != nil {
        var h = ["content-type": "text/plain", "via": "1.1 edge-a"]
        h["cache-control"] = cacheable == true ? "max-age=600" : "no-store"
        if let etag { h["etag"] = etag }
        if let contentLength { h["content-length"] = String(contentLength) }
        e.responseHeaders = h
    }
    e.cacheable = cacheable
    e.proxy = "edge-a"
    return e
}

/// A TLS ClientHello with `name` as SNI.
func serverNameEvent(_ name: String, at i: Int, device: String = testDevice) -> StateEvent {
    let d = IPAddress(device)!
    var e = StateEvent(kind: .serverName, timestampNanoseconds: baseNs + UInt64(i) * 1_000_000, device: d, client: d,
                       clientPort: 50000, server: IPAddress("198.51.100.7")!, serverPort: 443, vlans: [], teid: nil)
    e.transport = "tls"
    e.serverName = name
    e.alpn = ["h2"]
    e.tlsVersions = [0x0304]
    return e
}

func store(_ events: [StateEvent]) -> StateStore {
    let s = StateStore()
    for e in events { s.apply(.event(e)) }
    return s
}

// MARK: - Services

/// Control-plane settings for tests: short retries and polls.
func controlPlaneConfiguration(advertise: String? = nil) -> ControlPlaneConfiguration {
    var c = ControlPlaneConfiguration(token: testToken)
    c.advertiseURL = advertise
    c.retryInitialMilliseconds = 40
    c.retryMaxMilliseconds = 200
    c.pollMilliseconds = 50
    return c
}

func makeControlPlane(store: StateStore = StateStore(), agent: String, configuration: ControlPlaneConfiguration = controlPlaneConfiguration(),
                      journal: (@Sendable (JournalRecord) -> Void)? = nil) -> ControlPlane
{
    let edges = EdgeConfiguration(edges: [EdgeNode(name: "edge-a", agent: "http://127.0.0.2:9"),
                                          EdgeNode(name: "edge-b", agent: agent)],
                                  cells: ["cell-a": "edge-a", "cell-b": "edge-b"])
    return ControlPlane(store: store, edges: edges, configuration: configuration, journal: journal,
                        log: quietLogger("test.control"))
}

func makeAgent(cache: String, concurrency: Int = 8, preconnectPort: Int = 443, journal: JournalWriter? = nil) -> Agent {
    var c = AgentConfiguration(token: testToken, cacheURL: cache)
    c.concurrency = concurrency
    c.preconnectPort = preconnectPort
    c.progressIntervalMilliseconds = 20
    c.fetchTimeoutSeconds = 5
    return Agent(configuration: c, journal: journal, log: quietLogger("test.agent"))
}

/// A MEC 012 CellChangeNotification for `device` from cell-a to cell-b.
func cellChange(hoStatus: String, device: String = testDevice) -> String {
    """
    {"notificationType": "CellChangeNotification", "hoStatus": \(hoStatus),
     "associateId": [{"type": 1, "value": "\(device)"}],
     "srcEcgi": {"plmn": {"mcc": "001", "mnc": "01"}, "cellId": "cell-a"},
     "trgEcgi": [{"plmn": {"mcc": "001", "mnc": "01"}, "cellId": "cell-b"}],
     "timeStamp": {"seconds": 1764064800, "nanoSeconds": 0}}
    """
}

/// An RFC 3339 time `seconds` from now.
func deadline(in seconds: Double) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return f.string(from: Date().addingTimeInterval(seconds))
}

/// A value shared with escaping closures (a `Mutex` cannot be captured by them).
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    var value: Value { mutex.withLock { $0 } }
    func mutate(_ change: (inout Value) -> Void) { mutex.withLock { change(&$0) } }
}
