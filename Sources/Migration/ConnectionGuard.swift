import Glibc
import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import Synchronization
import MigrationAPI

/// Limits on the API's connections, against clients that hold the server without sending a request (no token
/// needed for that): a request's head must arrive within `headerSeconds` of the connection's start or of the
/// previous response, and its body within `bodySeconds` of its head; at most `maxConnections` are open at once
/// (one more is closed at once). Each is counted (`ConnectionStatistics`).
public struct ConnectionLimits: Sendable {
    public var headerSeconds: Double = 10
    public var bodySeconds: Double = 60
    public var maxConnections = 1024

    public init() {}
}

/// What the connection limits did. `shared` is the one the process's API server uses (and `/metrics` shows); a
/// server given its own counts its connections apart.
public final class ConnectionStatistics: Sendable {
    public static let shared = ConnectionStatistics()
    public init() {}
    let open = Atomic<Int>(0)
    let refused = Atomic<UInt64>(0)
    let headerTimeouts = Atomic<UInt64>(0)
    let bodyTimeouts = Atomic<UInt64>(0)
    let unreadable = Atomic<UInt64>(0)

    public var openConnections: Int { open.load(ordering: .relaxed) }
    public var refusedConnections: UInt64 { refused.load(ordering: .relaxed) }
    public var headerTimeoutsClosed: UInt64 { headerTimeouts.load(ordering: .relaxed) }
    public var bodyTimeoutsClosed: UInt64 { bodyTimeouts.load(ordering: .relaxed) }
    /// Requests the HTTP decoder could not read (answered 400, connection closed).
    public var unreadableRequests: UInt64 { unreadable.load(ordering: .relaxed) }

    /// The figures as `/metrics` samples.
    public func samples() -> [ServiceMetrics.Sample] {
        [
            .init("statetap_api_connections", .gauge, Double(openConnections)),
            .init("statetap_api_connections_refused_total", .counter, Double(refusedConnections)),
            .init("statetap_api_read_timeouts_total", .counter, Double(headerTimeoutsClosed), labels: [("phase", "header")]),
            .init("statetap_api_read_timeouts_total", .counter, Double(bodyTimeoutsClosed), labels: [("phase", "body")]),
            .init("statetap_api_unreadable_requests_total", .counter, Double(unreadableRequests)),
        ]
    }
}

/// One connection's guard, after HTTP decoding: the read deadlines and the connection count.
final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let limits: ConnectionLimits
    private let statistics: ConnectionStatistics
    private var deadline: Scheduled<Void>?
    private var counted = false
    /// A response's head has gone out and its end not yet.
    private var responding = false
    /// This handler answered a request that could not be parsed and closes the connection: what the server
    /// writes after that is dropped.
    private var answeredParseError = false

    init(limits: ConnectionLimits, statistics: ConnectionStatistics = .shared) {
        self.limits = limits
        self.statistics = statistics
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let now = statistics.open.wrappingAdd(1, ordering: .relaxed).newValue
        counted = true
        if now > limits.maxConnections {
            statistics.refused.wrappingAdd(1, ordering: .relaxed)
            context.close(promise: nil)
            return
        }
        arm(context, .header)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        if counted { statistics.open.wrappingSubtract(1, ordering: .relaxed); counted = false }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        if counted { statistics.open.wrappingSubtract(1, ordering: .relaxed); counted = false }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: arm(context, .body)
        case .body: break
        case .end:
            deadline?.cancel()  // the request is in; the next deadline starts with its response's end
            deadline = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !answeredParseError else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        switch unwrapOutboundIn(data) {
        case .head: responding = true
        case .body: break
        case .end:
            responding = false
            arm(context, .header)
        }
        context.write(data, promise: promise)
    }

    /// A request the HTTP decoder cannot read (a NUL in a header, a head over the decoder's limit, bad framing)
    /// gets the API's JSON error, as every other refusal does, and the connection is closed: after such a request
    /// where the next one starts is unknown. (Hummingbird would answer 400 with an empty body.)
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parse = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        deadline?.cancel()
        deadline = nil
        answeredParseError = true
        statistics.unreadable.wrappingAdd(1, ordering: .relaxed)
        guard !responding else {  // a response is half written: nothing more can be said on this connection
            context.close(promise: nil)
            return
        }
        let body = ByteBuffer(string: errorJSON(Self.describe(parse)))
        let head = HTTPResponse(status: .badRequest, headerFields: [
            .contentType: "application/json", .contentLength: String(body.readableBytes), .connection: "close",
        ])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    /// The decoder's error in the API's words.
    static func describe(_ error: HTTPParserError) -> String {
        switch error {
        case .headerOverflow:
            return "the request head is larger than the server reads (80 KB)"
        case .invalidHeaderToken, .invalidCharactersUsed:
            return "the request head has a character that HTTP does not allow there (a NUL or control character in a header, RFC 9110 5.5)"
        case .invalidContentLength, .unexpectedContentLength:
            return "the request's Content-Length is not valid"
        case .invalidChunkSize:
            return "the request's chunked body is not valid"
        case .invalidMethod:
            return "the request method is not valid"
        case .invalidURL:
            return "the request target is not valid"
        case .invalidVersion:
            return "the request's HTTP version is not valid"
        default:
            return "the request is not valid HTTP/1.1 (\(error))"
        }
    }

    private enum Phase { case header, body }

    /// Closes the connection unless the next step (a request's head, or the rest of its body) comes in time.
    private func arm(_ context: ChannelHandlerContext, _ phase: Phase) {
        deadline?.cancel()
        let channel = context.channel
        let statistics = statistics
        let seconds = phase == .header ? limits.headerSeconds : limits.bodySeconds
        deadline = context.eventLoop.scheduleTask(in: .milliseconds(Int64(seconds * 1000))) {
            switch phase {
            case .header: statistics.headerTimeouts.wrappingAdd(1, ordering: .relaxed)
            case .body: statistics.bodyTimeouts.wrappingAdd(1, ordering: .relaxed)
            }
            channel.close(promise: nil)
        }
    }
}

/// Raises this process's open-file limit to its hard limit (where allowed): each API connection is a file.
/// Returns the soft limit in force afterwards.
@discardableResult
public func raiseOpenFileLimit() -> Int {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
    if limit.rlim_cur < limit.rlim_max {
        var raised = limit
        raised.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
    }
    return limit.rlim_cur > rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)  // RLIM_INFINITY is all ones
}
