import Decode
import Extract
import Flows

/// Follows HTTP/1.x connections in one worker: both directions reassembled, requests and responses parsed and
/// paired in order, a web_link event per request (with its response when seen). Bounded in connections.
final class HTTPTracker {
    /// A class: updated in place per segment (a struct copied out of the dictionary and back would copy its
    /// buffers on every write).
    private final class Connection {
        var clientStream = StreamReassembler(maxBuffered: 256 * 1024)
        var serverStream = StreamReassembler(maxBuffered: 256 * 1024)
        var client: HTTPStreamParser
        var server: HTTPStreamParser
        var pending: [HTTPRequest] = []
        /// A CONNECT succeeded: the rest of the connection is a tunnel, not HTTP.
        var tunnel = false
        var entry: FlowEntry
        let vlans: [UInt16]
        let teid: UInt32?

        init(fromStart: Bool, entry: FlowEntry, vlans: [UInt16], teid: UInt32?) {
            client = HTTPStreamParser(side: .client, fromStart: fromStart)
            server = HTTPStreamParser(side: .server, fromStart: fromStart)
            self.entry = entry
            self.vlans = vlans
            self.teid = teid
        }

        var buffered: Int { clientStream.buffered + serverStream.buffered }
        var malformed: Int { client.malformed + server.malformed }
    }

    private var connections: [FlowKey: Connection] = [:]
    private let maxConnections: Int
    var counters = HTTPCounters()
    static let ports: Set<UInt16> = [80, 8080, 8000, 8008, 3128]

    private let budget: StreamBudget

    init(maxConnections: Int = 65536, budget: StreamBudget) {
        self.maxConnections = maxConnections
        self.budget = budget
    }

    /// Whether a segment may start following a connection: a SYN to an HTTP port, or data that starts like a
    /// request (method token and a space) or a status line.
    @inline(__always)
    static func mightStart(_ payload: UnsafeRawBufferPointer, syn: Bool, serverPort: UInt16) -> Bool {
        if syn { return ports.contains(serverPort) }
        guard payload.count >= 5 else { return false }
        let b = payload[0]
        if b == 0x48 /* H */ && payload[1] == 0x54 && payload[2] == 0x54 && payload[3] == 0x50 && payload[4] == 0x2f { return true }
        guard b >= 65 && b <= 90 else { return false }
        var i = 1
        while i < min(payload.count, 16), (payload[i] >= 65 && payload[i] <= 90) || payload[i] == 45 { i += 1 }
        return i < payload.count && payload[i] == 32
    }

    @inline(__always)
    func isTracked(_ key: FlowKey) -> Bool { !connections.isEmpty && connections[key] != nil }

    /// A segment of a connection in either direction; events go to `publish`.
    @inline(never)
    func handle(entry: FlowEntry, fromClient: Bool, seq: UInt32, syn: Bool, payload: UnsafeRawBufferPointer,
                packet p: DecodedPacket, ts: UInt64, publish: (StateEvent) -> Void)
    {
        let key = entry.key
        let c: Connection
        if let existing = connections[key] {
            c = existing
        } else {
            guard Self.mightStart(payload, syn: syn, serverPort: entry.serverPort) else { return }
            if connections.count >= maxConnections {
                counters.tableCleared &+= 1
                for old in connections.values { budget.release(old.buffered) }
                connections.removeAll(keepingCapacity: true)
            }
            c = Connection(fromStart: syn, entry: entry, vlans: vlanList(p), teid: p.hasTEID ? p.teid : nil)
            connections[key] = c
            counters.connections &+= 1
        }
        c.entry = entry
        var messages: [HTTPStreamParser.Message] = []
        var gaps: UInt64 = 0
        let before = c.buffered
        let malformedBefore = c.malformed
        // A reassembler calls back into its parser: different properties of the connection, updated in place.
        func toClientParser(_ e: StreamReassembler.Event) {
            switch e {
            case .data(let d): c.client.feed(d) { messages.append($0) }
            case .gap: c.client.gap(); gaps &+= 1
            }
        }
        func toServerParser(_ e: StreamReassembler.Event) {
            switch e {
            case .data(let d): c.server.feed(d) { messages.append($0) }
            case .gap: c.server.gap(); gaps &+= 1
            }
        }
        if fromClient {
            if !c.tunnel { c.clientStream.add(seq: seq, syn: syn, payload: payload, deliver: toClientParser) }
        } else {
            c.serverStream.add(seq: seq, syn: syn, payload: payload, deliver: toServerParser)
        }
        if budget.charge(c.buffered - before) {
            // Over the worker's memcap: this connection gives up its holes now (its parsers resynchronize).
            let held = c.buffered
            c.clientStream.finish(toClientParser)
            c.serverStream.finish(toServerParser)
            budget.release(held)
            counters.memcapSkips &+= 1
        }
        counters.gaps &+= gaps
        counters.malformed &+= UInt64(c.malformed - malformedBefore)
        for m in messages {
            switch m {
            case .request(let r):
                counters.requests &+= 1
                c.server.pendingMethods.append(r.method)
                c.pending.append(r)
                if r.method == "CONNECT" { c.tunnel = true }  // the client's next bytes belong to the tunnel
                if c.pending.count > 256 { publish(event(c, c.pending.removeFirst(), nil, ts)) }
            case .response(let r):
                counters.responses &+= 1
                guard !c.pending.isEmpty else {
                    counters.responsesWithoutRequest &+= 1
                    continue
                }
                publish(event(c, c.pending.removeFirst(), r, ts))
            }
        }
    }

    /// The connection ended: requests still waiting for a response are reported without one.
    func ended(_ key: FlowKey, ts: UInt64, publish: (StateEvent) -> Void) {
        guard !connections.isEmpty, let c = connections.removeValue(forKey: key) else { return }
        budget.release(c.buffered)
        // What waited behind a hole is parsed now (the holes are reported), then unanswered requests go out.
        var messages: [HTTPStreamParser.Message] = []
        c.clientStream.finish { e in
            switch e {
            case .data(let d): c.client.feed(d) { messages.append($0) }
            case .gap: c.client.gap()
            }
        }
        for case .request(let r) in messages { c.pending.append(r) }
        for r in c.pending { publish(event(c, r, nil, ts)) }
    }

    /// Everything still open at the end of a run.
    func flush(ts: UInt64, publish: (StateEvent) -> Void) {
        for key in Array(connections.keys) { ended(key, ts: ts, publish: publish) }
    }

    private func event(_ c: Connection, _ r: HTTPRequest, _ response: HTTPResponse?, _ ts: UInt64) -> StateEvent {
        let entry = c.entry
        var e = StateEvent(kind: .webLink, timestampNanoseconds: ts,
                           device: entry.hasDevice ? entry.device : entry.clientAddress,
                           client: entry.clientAddress, clientPort: entry.clientPort,
                           server: entry.serverAddress, serverPort: entry.serverPort, vlans: c.vlans, teid: c.teid)
        e.method = r.method
        e.url = r.url
        e.host = r.host ?? (r.method == "CONNECT" ? r.target : nil)
        e.httpVersion = r.version
        if let response {
            e.status = response.status
            e.responseHeaders = response.headers
            e.cacheable = Cacheability.isCacheable(method: r.method, response: response)
            e.proxy = EdgeProxy.identify(response)
        }
        return e
    }
}

/// What the HTTP tracker counted.
public struct HTTPCounters: Sendable {
    public var connections: UInt64 = 0
    public var requests: UInt64 = 0
    public var responses: UInt64 = 0
    public var responsesWithoutRequest: UInt64 = 0
    public var gaps: UInt64 = 0
    public var malformed: UInt64 = 0
    public var tableCleared: UInt64 = 0
    /// Connections that gave up their holes because the worker's TCP memcap was reached.
    public var memcapSkips: UInt64 = 0
    public init() {}

    mutating func merge(_ o: HTTPCounters) {
        memcapSkips += o.memcapSkips
        connections += o.connections; requests += o.requests; responses += o.responses
        responsesWithoutRequest += o.responsesWithoutRequest; gaps += o.gaps; malformed += o.malformed
        tableCleared += o.tableCleared
    }
}
