import Glibc
import HTTPTypes
import HummingbirdCore
import NIOCore
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

    public var openConnections: Int { open.load(ordering: .relaxed) }
    public var refusedConnections: UInt64 { refused.load(ordering: .relaxed) }
    public var headerTimeoutsClosed: UInt64 { headerTimeouts.load(ordering: .relaxed) }
    public var bodyTimeoutsClosed: UInt64 { bodyTimeouts.load(ordering: .relaxed) }

    /// The figures as `/metrics` samples.
    public func samples() -> [ServiceMetrics.Sample] {
        [
            .init("statetap_api_connections", .gauge, Double(openConnections)),
            .init("statetap_api_connections_refused_total", .counter, Double(refusedConnections)),
            .init("statetap_api_read_timeouts_total", .counter, Double(headerTimeoutsClosed), labels: [("phase", "header")]),
            .init("statetap_api_read_timeouts_total", .counter, Double(bodyTimeoutsClosed), labels: [("phase", "body")]),
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
        if case .end = unwrapOutboundIn(data) {
            arm(context, .header)
        }
        context.write(data, promise: promise)
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
