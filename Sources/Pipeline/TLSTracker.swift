import Decode
import Extract
import Flows

/// Finds TLS ClientHellos in one worker's TCP traffic: the client's byte stream of each connection is put back
/// in order (`StreamReassembler`) only until its ClientHello is complete or it is clearly not TLS; then the
/// connection is marked done and costs nothing more. Bounded in connections and buffered bytes.
final class TLSTracker {
    /// A class: updated in place per segment (a struct copied out of the dictionary and back would copy its
    /// buffers on every write).
    private final class Stream {
        var reassembler = StreamReassembler(maxBuffered: 64 * 1024)
        var collector = TLSClientHelloCollector()
        var done = false

        /// Done: the buffers go, the entry stays as a tombstone that keeps later segments out.
        func close() {
            done = true
            reassembler = StreamReassembler(maxBuffered: 0)
            collector = TLSClientHelloCollector()
        }
    }

    private var streams: [FlowKey: Stream] = [:]
    private let maxConnections: Int
    var counters = TLSCounters()

    private let budget: StreamBudget

    init(maxConnections: Int = 65536, budget: StreamBudget) {
        self.maxConnections = maxConnections
        self.budget = budget
    }

    /// Cheap gate on the hot path for a client segment of a connection not seen yet: a SYN, or data that starts
    /// like a TLS handshake record or an HTTP CONNECT.
    @inline(__always)
    static func mightStart(_ payload: UnsafeRawBufferPointer, syn: Bool) -> Bool {
        syn || (payload.count > 0 && (payload[0] == 22 || payload[0] == 0x43))
    }

    /// Whether a connection is followed (in progress or done).
    @inline(__always)
    func isTracked(_ key: FlowKey) -> Bool { !streams.isEmpty && streams[key] != nil }

    /// A client-to-server segment. Returns a server_name event when its ClientHello completed.
    @inline(never)
    func handle(key: FlowKey, seq: UInt32, syn: Bool, payload: UnsafeRawBufferPointer, packet p: DecodedPacket,
                entry: FlowEntry, ts: UInt64) -> StateEvent?
    {
        let stream: Stream
        if let s = streams[key] {
            guard !s.done else { return nil }
            stream = s
        } else {
            guard Self.mightStart(payload, syn: syn) else { return nil }
            if streams.count >= maxConnections {
                counters.tableCleared &+= 1
                for s in streams.values { budget.release(s.reassembler.buffered) }
                streams.removeAll(keepingCapacity: true)
            }
            stream = Stream()
            streams[key] = stream
        }
        var outcome: TLSClientHelloCollector.Outcome?
        let before = stream.reassembler.buffered
        // The reassembler calls `deliver`, which feeds the collector: different properties, updated in place.
        func deliver(_ event: StreamReassembler.Event) {
            guard outcome == nil else { return }
            switch event {
            case .data(let bytes): outcome = stream.collector.feed(bytes)
            case .gap: outcome = stream.collector.gap()
            }
        }
        stream.reassembler.add(seq: seq, syn: syn, payload: payload, deliver: deliver)
        if budget.charge(stream.reassembler.buffered - before) {
            // Over the worker's memcap: this stream gives up its holes now.
            let held = stream.reassembler.buffered
            stream.reassembler.finish(deliver)
            budget.release(held)
            counters.memcapSkips &+= 1
        }
        guard let outcome else { return nil }
        budget.release(stream.reassembler.buffered)
        stream.close()
        switch outcome {
        case .gaveUp:
            counters.notTLS &+= 1
            return nil
        case .clientHello(let info):
            counters.clientHellos &+= 1
            return StateEvent.serverName(info, transport: "tls", ts: ts,
                                         device: entry.hasDevice ? entry.device : entry.clientAddress,
                                         client: entry.clientAddress, clientPort: entry.clientPort,
                                         server: entry.serverAddress, serverPort: entry.serverPort, packet: p)
        }
    }

    /// The connection ended: its state goes.
    func ended(_ key: FlowKey) {
        guard !streams.isEmpty, let s = streams.removeValue(forKey: key) else { return }
        budget.release(s.reassembler.buffered)
    }
}

/// Out-of-order TCP bytes held by one worker's parsers, against `--reassembly-memcap`.
final class StreamBudget {
    let capacity: Int
    private(set) var used = 0
    private(set) var peak = 0

    init(capacity: Int) { self.capacity = capacity }

    /// Adds `delta` (may be negative); true when the worker is now over its cap.
    func charge(_ delta: Int) -> Bool {
        used += delta
        if used > peak { peak = used }
        return used > capacity
    }

    func release(_ bytes: Int) { used -= bytes }
}

/// What the TLS tracker counted.
public struct TLSCounters: Sendable {
    public var clientHellos: UInt64 = 0
    /// Client streams followed that turned out not to start with a ClientHello (or had a gap before its end).
    public var notTLS: UInt64 = 0
    public var tableCleared: UInt64 = 0
    /// Streams that gave up their holes because the worker's TCP memcap was reached.
    public var memcapSkips: UInt64 = 0
    public init() {}

    mutating func merge(_ o: TLSCounters) {
        clientHellos += o.clientHellos; notTLS += o.notTLS; tableCleared += o.tableCleared
        memcapSkips += o.memcapSkips
    }
}
