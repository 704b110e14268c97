import Decode
import Flows

/// Finds QUIC ClientHellos in one worker's UDP traffic: client Initials are decrypted (cold path, a few packets
/// per connection) and their CRYPTO frames reassembled per (flow, client DCID) until the ClientHello is complete.
/// Bounded: at most `maxConnections` connections in progress; beyond, the table is cleared (counted).
package final class QUICTracker {
    private struct Key: Hashable {
        var flow: FlowKey
        var dcid: [UInt8]
    }

    /// A connection whose ClientHello was reported: what tells its later attempts apart from a new connection.
    private struct Reported {
        var scid: [UInt8]
        var version: UInt32
        var serverName: String?
        var alpn: [String]
    }

    private var streams: [Key: CryptoStreamAssembler] = [:]
    /// Per flow (client and server address and port), the connections reported on it, so that the same
    /// connection's new attempt after Retry or version negotiation (new DCID, same ClientHello) gives no second
    /// event. A few per flow: a client may multiplex connections on one socket.
    private var reported: [FlowKey: [Reported]] = [:]
    private static let reportedPerFlow = 8
    /// Initials that did not decrypt with client keys (a server's Initials, another client's keys): not tried again.
    private var undecryptable: Set<Key> = []
    private let maxConnections: Int
    package var counters = QUICCounters()

    /// The worker's reassembly memcap, shared with TCP: CRYPTO bytes held for ClientHellos in progress.
    private let budget: StreamBudget

    package init(maxConnections: Int = 16384, budget: StreamBudget) {
        self.maxConnections = maxConnections
        self.budget = budget
    }

    /// Cheap test on the hot path: a long header with the fixed bit, in a datagram large enough for a client
    /// Initial (RFC 9000 §14.1: at least 1200 bytes).
    @inline(__always)
    package static func mightBeInitial(_ payload: UnsafeRawBufferPointer) -> Bool {
        payload.count >= 1200 && payload[0] & 0xc0 == 0xc0
    }

    /// Handles one UDP payload; returns a server_name event when a ClientHello completed.
    @inline(never)
    package func handle(_ payload: UnsafeRawBufferPointer, packet p: DecodedPacket, device: IPAddress, ts: UInt64) -> StateEvent? {
        var sourceIsA = false
        let flow = FlowKey(p, sourceIsA: &sourceIsA)
        var lastTried: Key?
        let result = QUICInitialParser.parse(Array(payload)) { _, dcid in
            let key = Key(flow: flow, dcid: dcid)
            if streams[key]?.finished == true || undecryptable.contains(key) {
                counters.skipped &+= 1
                return false
            }
            lastTried = key
            return true
        }
        if case .invalid = result, let key = lastTried {
            if undecryptable.count >= maxConnections { undecryptable.removeAll(keepingCapacity: true) }
            undecryptable.insert(key)
        }
        switch result {
        case .unsupportedVersion:
            counters.unsupportedVersion &+= 1
            return nil
        case .noInitial, .invalid:
            // Server Initials (other keys), Retry, version negotiation, or not QUIC at all.
            counters.notDecrypted &+= 1
            return nil
        case .initials(let initials):
            counters.initials &+= UInt64(initials.count)
            for initial in initials {
                let key = Key(flow: flow, dcid: initial.dcid)
                var stream = streams[key] ?? {
                    if streams.count >= maxConnections {
                        counters.tableCleared &+= 1
                        for s in streams.values { budget.release(s.held) }
                        streams.removeAll(keepingCapacity: true)
                    }
                    return CryptoStreamAssembler()
                }()
                if stream.finished { continue }
                var hello: [UInt8]?
                let before = stream.held
                for frame in initial.crypto where hello == nil {
                    hello = stream.add(offset: frame.offset, data: frame.data)
                }
                if budget.charge(stream.held - before) {
                    // Over the worker's memcap: this ClientHello is given up (counted), its bytes released.
                    budget.release(stream.held)
                    stream.close()
                    counters.memcapDrops &+= 1
                }
                streams[key] = stream
                guard let hello else { continue }
                guard let info = try? hello.withUnsafeBytes({ try ClientHelloParser.parse($0) }) else {
                    counters.clientHelloMalformed &+= 1
                    continue
                }
                counters.clientHellos &+= 1
                if isReattempt(flow: flow, initial, info) {
                    counters.reattempts &+= 1
                    continue
                }
                var e = StateEvent.serverName(info, transport: "quic", ts: ts, device: device, client: p.source,
                                              clientPort: p.sourcePort, server: p.destination,
                                              serverPort: p.destinationPort, packet: p)
                e.quicVersion = initial.version
                e.dcid = initial.dcid
                return e
            }
            return nil
        }
    }

    /// Whether this ClientHello belongs to a connection already reported on the flow, sent again under a new
    /// DCID: after Retry (RFC 9000 §17.2.5.2) the client keeps its Source Connection ID and repeats its
    /// ClientHello; after version negotiation (RFC 9000 §6, RFC 9368) it repeats it in another version, its
    /// connection IDs perhaps new. Otherwise the connection is recorded (bounded) and false is returned.
    private func isReattempt(flow: FlowKey, _ initial: QUICInitialPacket, _ info: ClientHelloInfo) -> Bool {
        var list = reported[flow] ?? []
        for r in list where r.serverName == info.serverName && r.alpn == info.alpn
            && (r.scid == initial.scid || r.version != initial.version)
        {
            return true
        }
        if list.isEmpty && reported.count >= maxConnections {
            counters.tableCleared &+= 1
            reported.removeAll(keepingCapacity: true)
        }
        if list.count >= Self.reportedPerFlow { list.removeFirst() }
        list.append(Reported(scid: initial.scid, version: initial.version, serverName: info.serverName, alpn: info.alpn))
        reported[flow] = list
        return false
    }
}

/// What the QUIC tracker counted.
public struct QUICCounters: Sendable {
    public var initials: UInt64 = 0
    public var clientHellos: UInt64 = 0
    public var clientHelloMalformed: UInt64 = 0
    public var notDecrypted: UInt64 = 0
    public var unsupportedVersion: UInt64 = 0
    public var tableCleared: UInt64 = 0
    /// ClientHellos in progress given up because the worker's reassembly memcap was reached.
    public var memcapDrops: UInt64 = 0
    /// Initials not decrypted again: their connection's ClientHello was known, or their keys failed before.
    public var skipped: UInt64 = 0
    /// ClientHellos of a connection already reported, sent again under a new DCID after Retry or version
    /// negotiation: one connection, one event.
    public var reattempts: UInt64 = 0
    public init() {}

    package mutating func merge(_ o: QUICCounters) {
        skipped += o.skipped; reattempts += o.reattempts
        initials += o.initials; clientHellos += o.clientHellos; clientHelloMalformed += o.clientHelloMalformed
        notDecrypted += o.notDecrypted; unsupportedVersion += o.unsupportedVersion; tableCleared += o.tableCleared; memcapDrops += o.memcapDrops
    }
}

package func vlanList(_ p: DecodedPacket) -> [UInt16] {
    let ids = [p.vlanIDs.0, p.vlanIDs.1, p.vlanIDs.2, p.vlanIDs.3]
    return Array(ids.prefix(Int(min(p.vlanCount, 4))))
}
