import Decode
import Extract
import Flows

/// A finished flow, sent from a worker to the sink. Self-contained: it copies what it keeps.
public struct FlowRecord: Sendable, BitwiseCopyable {
    public var device: IPAddress
    public var hasDevice: Bool
    public var client: IPAddress
    public var server: IPAddress
    public var clientPort: UInt16
    public var serverPort: UInt16
    public var ipProtocol: UInt8
    public var orientation: Orientation
    public var endReason: FlowEndReason
    public var firstSeenNanoseconds: UInt64
    public var lastSeenNanoseconds: UInt64
    public var packets: UInt64
    public var bytes: UInt64
    public var teidUplink: UInt32
    public var teidDownlink: UInt32

    init(_ e: borrowing FlowEntry, reason: FlowEndReason) {
        device = e.device; hasDevice = e.hasDevice
        client = e.clientAddress; server = e.serverAddress
        clientPort = e.clientPort; serverPort = e.serverPort
        ipProtocol = e.key.ipProtocol
        orientation = e.orientation; endReason = reason
        firstSeenNanoseconds = e.firstSeenNanoseconds; lastSeenNanoseconds = e.lastSeenNanoseconds
        packets = e.packetsToServer &+ e.packetsToClient
        bytes = e.bytesToServer &+ e.bytesToClient
        teidUplink = e.teidToServer; teidDownlink = e.teidToClient
    }
}

/// What one worker counted. Plain integers: written only by its worker, read after it is joined.
public struct WorkerCounters: Sendable {
    public var packets: UInt64 = 0
    public var bytes: UInt64 = 0
    /// Packets per layer, indexed by the bit number of `Layers`.
    public var layerPackets = [UInt64](repeating: 0, count: 32)
    /// Packets per decode error, indexed by `DecodeError.rawValue`.
    public var errors = [UInt64](repeating: 0, count: 64)
    /// Packets per notice, indexed by `DecodeNotice.rawValue`.
    public var notices = [UInt64](repeating: 0, count: 8)
    public var notIP: UInt64 = 0
    public var flowRecordsDropped: UInt64 = 0
    public var sinkFullWaits: UInt64 = 0
    public var flows = FlowTableStats()
    public var reassembly = ReassemblyStats()
    public var reassemblyIncompleteAtEnd: UInt64 = 0
    /// Most bytes the stream parsers (TCP out of order, QUIC CRYPTO) held at once, against `--reassembly-memcap`
    /// (per worker; the merged figure is the largest worker's).
    public var streamBytesPeak = 0
    /// Events published to the sink, and dropped because its ring was full.
    public var events: UInt64 = 0
    public var eventsDropped: UInt64 = 0
    public var quic = QUICCounters()
    public var tls = TLSCounters()
    public var https = HTTPSCounters()
    public var http = HTTPCounters()
    public var firstTimestamp: UInt64 = .max
    public var lastTimestamp: UInt64 = 0

    public init() {}

    mutating func merge(_ o: WorkerCounters) {
        packets += o.packets; bytes += o.bytes; notIP += o.notIP
        for i in layerPackets.indices { layerPackets[i] += o.layerPackets[i] }
        for i in errors.indices { errors[i] += o.errors[i] }
        for i in notices.indices { notices[i] += o.notices[i] }
        flowRecordsDropped += o.flowRecordsDropped; sinkFullWaits += o.sinkFullWaits
        flows.created += o.flows.created; flows.createdTCP += o.flows.createdTCP
        flows.createdUDP += o.flows.createdUDP; flows.endedIdle += o.flows.endedIdle
        flows.evictedLRU += o.flows.evictedLRU; flows.endedClosed += o.flows.endedClosed
        flows.peakActive += o.flows.peakActive; flows.withoutDevice += o.flows.withoutDevice
        reassembly.fragments += o.reassembly.fragments
        reassembly.datagramsCompleted += o.reassembly.datagramsCompleted
        reassembly.datagramsTimedOut += o.reassembly.datagramsTimedOut
        reassembly.datagramsDroppedForBudget += o.reassembly.datagramsDroppedForBudget
        reassembly.overlapConflicts += o.reassembly.overlapConflicts
        reassembly.peakBytesHeld = max(reassembly.peakBytesHeld, o.reassembly.peakBytesHeld)
        reassemblyIncompleteAtEnd += o.reassemblyIncompleteAtEnd
        streamBytesPeak = max(streamBytesPeak, o.streamBytesPeak)
        events += o.events; eventsDropped += o.eventsDropped
        quic.merge(o.quic)
        tls.merge(o.tls)
        https.merge(o.https)
        http.merge(o.http)
        firstTimestamp = min(firstTimestamp, o.firstTimestamp)
        lastTimestamp = max(lastTimestamp, o.lastTimestamp)
    }

    /// Packets that carried `layer`.
    public func packets(with layer: Layers) -> UInt64 {
        layerPackets[layer.rawValue.trailingZeroBitCount]
    }
}
