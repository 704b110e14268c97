import Decode
import Flows

/// Follows HTTP/1.x connections in one worker: both directions reassembled, requests and responses parsed and
/// paired in order, a web_link event per request (with its response when seen). Bounded in connections.
package final class HTTPTracker {
    /// A class: updated in place per segment (a struct copied out of the dictionary and back would copy its
    /// buffers on every write).
    private final class Connection {
        var clientStream = StreamReassembler(maxBuffered: 256 * 1024)
        var serverStream = StreamReassembler(maxBuffered: 256 * 1024)
        var client: HTTPStreamParser
        var server: HTTPStreamParser
        var pending: [HTTPRequest] = []
        /// Final responses read while no request waited, whose segment acknowledged client bytes up to
        /// `strayAck`: a request that then arrives within those bytes was already answered by one of them (the two
        /// directions of a tap are not in step), so it is reported without a response instead of waiting for, and
        /// taking, the next request's.
        var strayResponses = 0
        var strayAck: UInt32 = 0
        /// A CONNECT succeeded: the rest of the connection is a tunnel, not HTTP.
        var tunnel = false
        var entry: FlowEntry
        let vlans: [UInt16]
        let teid: UInt32?

        init(entry: FlowEntry, vlans: [UInt16], teid: UInt32?) {
            // From the handshake when it was seen: the parsers know they start at a message, and data that
            // arrives before the first byte is held instead of being taken for a mid-stream start.
            client = HTTPStreamParser(side: .client, fromStart: entry.hasClientISN)
            server = HTTPStreamParser(side: .server, fromStart: entry.hasServerISN)
            if entry.hasClientISN { clientStream.start(at: entry.clientISN &+ 1) }
            if entry.hasServerISN { serverStream.start(at: entry.serverISN &+ 1) }
            self.entry = entry
            self.vlans = vlans
            self.teid = teid
        }

        var buffered: Int { clientStream.buffered + serverStream.buffered }
        var malformed: Int { client.malformed + server.malformed }
        var interim: Int { server.interim }
        var truncated: Int { client.truncatedMessages + server.truncatedMessages }
    }

    private var connections: ConnectionSlots<Connection>
    package var counters = HTTPCounters()
    /// Per-segment scratch of `handle` (see there).
    private var messages: [HTTPStreamParser.Message] = []
    private var gapsSeen: UInt64 = 0
    package static let ports: Set<UInt16> = [80, 8080, 8000, 8008, 3128]
    /// Requests waiting for their responses on one connection, at most.
    package static let maxPending = 256

    private let budget: StreamBudget

    package init(maxConnections: Int = 65536, budget: StreamBudget) {
        connections = ConnectionSlots(capacity: maxConnections)
        self.budget = budget
    }

    /// Whether a segment with data may start following a connection: the client's handshake was seen and the
    /// server port is an HTTP port, or the data starts like a request (method token and a space) or a status
    /// line. Nothing is allocated before the first data: a flood of half-open connections costs no parser state.
    @inline(__always)
    package static func mightStart(_ payload: UnsafeRawBufferPointer, handshake: Bool, serverPort: UInt16) -> Bool {
        if handshake && ports.contains(serverPort) { return true }
        guard payload.count >= 5 else { return false }
        let b = payload[0]
        if b == 0x48 /* H */ && payload[1] == 0x54 && payload[2] == 0x54 && payload[3] == 0x50 && payload[4] == 0x2f { return true }
        guard b >= 65 && b <= 90 else { return false }
        var i = 1
        while i < min(payload.count, 16), (payload[i] >= 65 && payload[i] <= 90) || payload[i] == 45 { i += 1 }
        return i < payload.count && payload[i] == 32
    }

    /// A segment of a connection in either direction; events go to `publish`. `handle` is the flow's HTTP mark
    /// (`ApplicationHandles.http`): set when following starts, `done` when the table is full. `cut`: bytes the
    /// segment carried after `payload` that the capture did not keep (snap length).
    @inline(never)
    package func handle(_ handle: inout Int32, entry: FlowEntry, fromClient: Bool, seq: UInt32, syn: Bool,
                payload: UnsafeRawBufferPointer, cut: Int = 0, packet p: DecodedPacket, ts: UInt64,
                publish: (StateEvent) -> Void)
    {
        let c: Connection
        if handle > 0, let existing = connections[handle], existing.entry.key == entry.key {
            c = existing
        } else {
            guard handle == 0, Self.mightStart(payload, handshake: entry.hasClientISN, serverPort: entry.serverPort)
            else { return }
            let new = Connection(entry: entry, vlans: vlanList(p), teid: p.hasTEID ? p.teid : nil)
            guard let h = connections.insert(new) else {
                // Counted once per connection: the flow is marked and not looked at again.
                counters.tableFull &+= 1
                handle = ApplicationHandles.done
                return
            }
            handle = h
            c = new
            counters.connections &+= 1
        }
        c.entry = entry
        // Tracker properties, not locals: the nested functions below capture them, and captured local variables
        // would be boxed on the heap for every segment.
        messages.removeAll(keepingCapacity: true)
        gapsSeen = 0
        let before = c.buffered
        let malformedBefore = c.malformed
        let interimBefore = c.interim
        let truncatedBefore = c.truncated
        // A reassembler calls back into its parser: different properties of the connection, updated in place.
        // Only the server side's loss of sync matters to pairing (see `pair`).
        func toClientParser(_ e: StreamReassembler.Event) {
            switch e {
            case .data(let d): c.client.feed(d) { if case .lostSync = $0 {} else { messages.append($0) } }
            case .gap(let n): c.client.gap(n) { _ in }; gapsSeen &+= 1
            case .cut(let n): c.client.cut(n) { if case .lostSync = $0 {} else { messages.append($0) } }
            }
        }
        func toServerParser(_ e: StreamReassembler.Event) {
            switch e {
            case .data(let d): c.server.feed(d) { messages.append($0) }
            case .gap(let n): c.server.gap(n) { messages.append($0) }; gapsSeen &+= 1
            case .cut(let n): c.server.cut(n) { messages.append($0) }
            }
        }
        if fromClient {
            if !c.tunnel { c.clientStream.add(seq: seq, syn: syn, payload: payload, cut: cut, deliver: toClientParser) }
        } else {
            c.serverStream.add(seq: seq, syn: syn, payload: payload, cut: cut, deliver: toServerParser)
        }
        if budget.charge(c.buffered - before) {
            // Over the worker's memcap: this connection gives up its holes now (its parsers resynchronize).
            let held = c.buffered
            c.clientStream.finish(toClientParser)
            c.serverStream.finish(toServerParser)
            budget.release(held)
            counters.memcapSkips &+= 1
        }
        counters.gaps &+= gapsSeen
        counters.malformed &+= UInt64(c.malformed - malformedBefore)
        counters.interimResponses &+= UInt64(c.interim - interimBefore)
        counters.truncatedMessages &+= UInt64(c.truncated - truncatedBefore)
        // What the server had received of the client's stream when it sent this segment.
        let ack: UInt32? = !fromClient && p.tcpFlags & TCPFlags.ack != 0 ? p.tcpAcknowledgment : nil
        if !messages.isEmpty { pair(messages, in: c, serverAck: ack, ts: ts, publish: publish) }
    }

    /// Requests wait for their responses, in order; each response completes the oldest waiting request. When the
    /// server side lost sync (bytes missing or unreadable), the responses of the requests waiting then may be in
    /// the lost bytes: those requests go out without a response rather than be paired with a later one.
    /// A response is never paired with a request that arrives after it: read while no request waits, it is
    /// counted (`responsesWithoutRequest`), and when its segment's acknowledgment (`serverAck`, nil when not
    /// known) shows the server already had the request that arrives next, that request goes out without a
    /// response (`unpairedResponseFirst`) rather than take the response of the one after it.
    private func pair(_ messages: [HTTPStreamParser.Message], in c: Connection, serverAck: UInt32?, ts: UInt64,
                      publish: (StateEvent) -> Void)
    {
        for m in messages {
            switch m {
            case .request(let r):
                counters.requests &+= 1
                if r.method == "CONNECT" { c.tunnel = true }  // the client's next bytes belong to the tunnel
                if c.strayResponses > 0 {
                    // Its bytes end where the client's stream has been read to (this segment's end, at most).
                    if Int32(bitPattern: c.strayAck &- c.clientStream.next) >= 0 {
                        c.strayResponses -= 1
                        counters.unpairedResponseFirst &+= 1
                        publish(event(c, r, nil, ts))
                        continue
                    }
                    c.strayResponses = 0  // sent after those responses: neither it nor a later request is theirs
                }
                c.server.pendingMethods.append(r.method)
                c.pending.append(r)
                if c.pending.count > Self.maxPending {
                    // Endless requests without responses: the oldest goes out unanswered; bounded memory.
                    publish(event(c, c.pending.removeFirst(), nil, ts))
                    if c.server.pendingMethods.count > Self.maxPending { c.server.pendingMethods.removeFirst() }
                }
            case .response(let r):
                counters.responses &+= 1
                guard !c.pending.isEmpty else {
                    counters.responsesWithoutRequest &+= 1
                    if let serverAck {
                        if c.strayResponses == 0 || Int32(bitPattern: serverAck &- c.strayAck) > 0 { c.strayAck = serverAck }
                        c.strayResponses += 1
                    }
                    continue
                }
                publish(event(c, c.pending.removeFirst(), r, ts))
            case .lostSync:
                counters.unpairedAfterLoss &+= UInt64(c.pending.count)
                for r in c.pending { publish(event(c, r, nil, ts)) }
                c.pending.removeAll()
                c.server.pendingMethods.removeAll()
            }
        }
    }

    /// The connection ended (RST, both FINs, or its flow ended): what waited behind a hole is parsed now (the
    /// holes are reported), responses are paired, then requests still waiting go out without a response.
    package func ended(_ handle: Int32, ts: UInt64, publish: (StateEvent) -> Void) {
        guard let c = connections.remove(handle) else { return }
        budget.release(c.buffered)
        let interimBefore = c.interim, truncatedBefore = c.truncated
        defer {
            counters.interimResponses &+= UInt64(c.interim - interimBefore)
            counters.truncatedMessages &+= UInt64(c.truncated - truncatedBefore)
        }
        var messages: [HTTPStreamParser.Message] = []
        c.clientStream.finish { e in
            switch e {
            case .data(let d): c.client.feed(d) { if case .lostSync = $0 {} else { messages.append($0) } }
            case .gap(let n): c.client.gap(n) { _ in }; counters.gaps &+= 1
            case .cut(let n): c.client.cut(n) { if case .lostSync = $0 {} else { messages.append($0) } }
            }
        }
        pair(messages, in: c, serverAck: nil, ts: ts, publish: publish)
        messages.removeAll()
        c.serverStream.finish { e in
            switch e {
            case .data(let d): c.server.feed(d) { messages.append($0) }
            case .gap(let n): c.server.gap(n) { messages.append($0) }; counters.gaps &+= 1
            case .cut(let n): c.server.cut(n) { messages.append($0) }
            }
        }
        pair(messages, in: c, serverAck: nil, ts: ts, publish: publish)
        counters.overlapConflicts &+= c.clientStream.conflicts &+ c.serverStream.conflicts
        for r in c.pending { publish(event(c, r, nil, ts)) }
    }

    /// Connections still followed (none once every flow has ended).
    package var followed: Int { connections.count }

    private func event(_ c: Connection, _ r: HTTPRequest, _ response: HTTPResponse?, _ ts: UInt64) -> StateEvent {
        let entry = c.entry
        var e = StateEvent(kind: .webLink, timestampNanoseconds: ts,
                           device: entry.hasDevice ? entry.device : entry.clientAddress,
                           client: entry.clientAddress, clientPort: entry.clientPort,
                           server: entry.serverAddress, serverPort: entry.serverPort, vlans: c.vlans, teid: c.teid)
        // A request that names no host (HTTP/1.0 without Host, a Fast Open SYN's…): its URL from the server's
        // address and port, as tshark builds a full URI, so it can still be fetched; `host` stays the Host header's
        // (none), and `hostFrom` says where the URL's host came from.
        let fromAddress = !r.namesHost && r.method != "CONNECT"
        let url = fromAddress ? r.url(authority: Self.authority(entry.serverAddress, entry.serverPort)) : r.url
        // One allocation for the fields: the URL twice (it and the host), a response's headers, the rest.
        e.fields.reserveCapacity(160 + 2 * (url?.utf8.count ?? 0) + (response == nil ? 0 : 320))
        e.method = r.method
        e.url = url
        e.host = r.host ?? (r.method == "CONNECT" ? r.target : nil)
        if fromAddress { e.hostFrom = "address" }
        if r.truncated || response?.truncated == true { e.truncated = true }
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

extension HTTPTracker {
    /// A URL's authority for a server address: IPv6 in brackets, the port omitted when it is 80 (RFC 3986 §3.2,
    /// §6.2.3).
    package static func authority(_ address: IPAddress, _ port: UInt16) -> String {
        let host = address.isIPv6 ? "[" + address.description + "]" : address.description
        return port == 80 ? host : host + ":" + String(port)
    }

    /// The same for a scheme: its default port (80 for http, 443 for https) is omitted.
    package static func authority(_ address: IPAddress, _ port: UInt16, scheme: String) -> String {
        let host = address.isIPv6 ? "[" + address.description + "]" : address.description
        return port == (scheme == "https" ? 443 : 80) ? host : host + ":" + String(port)
    }
}

/// What the HTTP tracker counted.
public struct HTTPCounters: Sendable {
    public var connections: UInt64 = 0
    public var requests: UInt64 = 0
    public var responses: UInt64 = 0
    public var responsesWithoutRequest: UInt64 = 0
    /// Requests reported without a response because the server's stream lost bytes while they waited.
    public var unpairedAfterLoss: UInt64 = 0
    /// Requests reported without a response because their response was read before them (a tap's directions
    /// out of step): the server had acknowledged the request when it sent a response no waiting request took.
    public var unpairedResponseFirst: UInt64 = 0
    /// Interim (1xx but 101) responses read; the final response after them is paired with the request.
    public var interimResponses: UInt64 = 0
    /// Requests and responses whose header block the capture cut (snap length): reported as far as they were
    /// captured whole, their events marked `truncated`.
    public var truncatedMessages: UInt64 = 0
    public var gaps: UInt64 = 0
    public var malformed: UInt64 = 0
    /// Connections not followed because the tracker already followed its maximum.
    public var tableFull: UInt64 = 0
    /// Connections that gave up their holes because the worker's TCP memcap was reached.
    public var memcapSkips: UInt64 = 0
    /// Segments whose bytes differed from a copy of the same sequence range already held (first copy kept).
    public var overlapConflicts: UInt64 = 0
    public init() {}

    package mutating func merge(_ o: HTTPCounters) {
        memcapSkips += o.memcapSkips; overlapConflicts += o.overlapConflicts
        connections += o.connections; requests += o.requests; responses += o.responses
        responsesWithoutRequest += o.responsesWithoutRequest; unpairedAfterLoss += o.unpairedAfterLoss; gaps += o.gaps; malformed += o.malformed
        unpairedResponseFirst += o.unpairedResponseFirst; interimResponses += o.interimResponses
        truncatedMessages += o.truncatedMessages
        tableFull += o.tableFull
    }
}
