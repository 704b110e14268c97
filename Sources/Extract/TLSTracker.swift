import Decode
import Flows

/// Finds TLS ClientHellos in one worker's TCP traffic: the client's byte stream of each connection is put back
/// in order (`StreamReassembler`) only until its ClientHello is complete or it is clearly not TLS; then its state
/// goes and the flow's mark (`ApplicationHandles.tls`) keeps later segments out at no cost. A stream that did not
/// start with a ClientHello is looked at again when a client segment starts with what can only be a ClientHello
/// record (STARTTLS in SMTP, IMAP, POP3, FTP, XMPP…). Bounded in connections and buffered bytes.
package final class TLSTracker {
    /// A class: updated in place per segment (a struct copied out of the dictionary and back would copy its
    /// buffers on every write).
    private final class Stream {
        var reassembler = StreamReassembler(maxBuffered: 64 * 1024)
        var collector = TLSClientHelloCollector()
        let key: FlowKey
        /// `restart`: a later ClientHello record (STARTTLS) starts the stream where it is, not at the handshake.
        init(entry: FlowEntry, restart: Bool) {
            key = entry.key
            if entry.hasClientISN && !restart { reassembler.start(at: entry.clientISN &+ 1) }
        }
    }

    private var streams: ConnectionSlots<Stream>
    package var counters = TLSCounters()

    private let budget: StreamBudget

    package init(maxConnections: Int = 65536, budget: StreamBudget) {
        streams = ConnectionSlots(capacity: maxConnections)
        self.budget = budget
    }

    /// Cheap gate on the hot path for a client segment with data of a connection not looked at yet: its
    /// handshake was seen (the stream is followed from its first byte), or the data starts like a TLS handshake
    /// record or an HTTP CONNECT. Nothing is allocated before the first data.
    @inline(__always)
    package static func mightStart(_ payload: UnsafeRawBufferPointer, handshake: Bool) -> Bool {
        handshake || (payload.count > 0 && (payload[0] == 22 || payload[0] == 0x43))
    }

    /// Stricter gate for a stream already found not to start with TLS (STARTTLS): a handshake record of TLS 1.x
    /// whose first message is a ClientHello.
    @inline(__always)
    package static func startsWithClientHelloRecord(_ payload: UnsafeRawBufferPointer) -> Bool {
        payload.count >= 6 && payload[0] == 22 && payload[1] == 3 && payload[2] <= 4 && payload[5] == 1
    }

    /// Whether a client segment goes to `handle`, given the flow's TLS mark.
    @inline(__always)
    package static func wants(_ mark: Int32, _ payload: UnsafeRawBufferPointer, handshake: Bool) -> Bool {
        if mark > 0 { return true }
        if mark == 0 { return mightStart(payload, handshake: handshake) }
        return mark == ApplicationHandles.notTLS && startsWithClientHelloRecord(payload)
    }

    /// A client-to-server segment. `mark` is the flow's TLS mark, updated as following starts and stops.
    /// Returns a server_name event when its ClientHello completed.
    @inline(never)
    package func handle(_ mark: inout Int32, seq: UInt32, syn: Bool, payload: UnsafeRawBufferPointer,
                packet p: DecodedPacket, entry: FlowEntry, ts: UInt64) -> StateEvent?
    {
        let stream: Stream
        if mark > 0, let s = streams[mark], s.key == entry.key {
            stream = s
        } else {
            guard Self.wants(mark, payload, handshake: entry.hasClientISN), mark <= 0 else { return nil }
            let new = Stream(entry: entry, restart: mark == ApplicationHandles.notTLS)
            guard let handle = streams.insert(new) else {
                counters.tableFull &+= 1
                mark = ApplicationHandles.done
                return nil
            }
            if mark == ApplicationHandles.notTLS { counters.restarted &+= 1 }
            mark = handle
            stream = new
        }
        var outcome: TLSClientHelloCollector.Outcome?
        let before = stream.reassembler.buffered
        // The reassembler calls `deliver`, which feeds the collector: different properties, updated in place.
        func deliver(_ event: StreamReassembler.Event) {
            guard outcome == nil else { return }
            switch event {
            case .data(let bytes): outcome = stream.collector.feed(bytes)
            case .gap, .cut: outcome = stream.collector.gap()
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
        release(mark)
        switch outcome {
        case .gaveUp:
            counters.notTLS &+= 1
            mark = ApplicationHandles.notTLS
            return nil
        case .clientHello(let info):
            counters.clientHellos &+= 1
            mark = ApplicationHandles.done
            return StateEvent.serverName(info, transport: "tls", ts: ts,
                                         device: entry.hasDevice ? entry.device : entry.clientAddress,
                                         client: entry.clientAddress, clientPort: entry.clientPort,
                                         server: entry.serverAddress, serverPort: entry.serverPort, packet: p)
        }
    }

    /// The connection ended (or its ClientHello is known): its state goes.
    package func ended(_ mark: Int32) {
        guard mark > 0 else { return }
        release(mark)
    }

    private func release(_ mark: Int32) {
        guard let s = streams.remove(mark) else { return }
        budget.release(s.reassembler.buffered)
        counters.overlapConflicts &+= s.reassembler.conflicts
    }

    /// Streams still followed (none once every flow has ended).
    package var followed: Int { streams.count }
}

/// Out-of-order TCP bytes held by one worker's parsers, against `--reassembly-memcap`.
package final class StreamBudget {
    package let capacity: Int
    package private(set) var used = 0
    package private(set) var peak = 0

    package init(capacity: Int) { self.capacity = capacity }

    /// Adds `delta` (may be negative); true when the worker is now over its cap.
    package func charge(_ delta: Int) -> Bool {
        used += delta
        if used > peak { peak = used }
        return used > capacity
    }

    package func release(_ bytes: Int) { used -= bytes }
}

/// What the TLS tracker counted.
public struct TLSCounters: Sendable {
    public var clientHellos: UInt64 = 0
    /// Client streams followed that turned out not to start with a ClientHello (or had a gap before its end).
    public var notTLS: UInt64 = 0
    /// Streams not followed because the tracker already followed its maximum.
    public var tableFull: UInt64 = 0
    /// Streams that gave up their holes because the worker's TCP memcap was reached.
    public var memcapSkips: UInt64 = 0
    /// Streams found not to start with TLS that were followed again from a later ClientHello record (STARTTLS).
    public var restarted: UInt64 = 0
    /// Segments whose bytes differed from a copy of the same sequence range already held (first copy kept).
    public var overlapConflicts: UInt64 = 0
    public init() {}

    package mutating func merge(_ o: TLSCounters) {
        clientHellos += o.clientHellos; notTLS += o.notTLS; tableFull += o.tableFull
        memcapSkips += o.memcapSkips; restarted += o.restarted; overlapConflicts += o.overlapConflicts
    }
}
