import Capture
import Decode
import Extract
import Flows
import Rings
import Synchronization

/// One decode worker: takes frames from its input ring, decodes them, tracks flows, returns the frames to the
/// source on its return ring and sends finished flows to the sink.
final class DecodeWorker: @unchecked Sendable {
    // @unchecked Sendable: after start, every stored var is touched only by the worker's own thread; the rings
    // and atomics carry everything that crosses threads.

    let input: SPSCRing<Frame>
    let returns: SPSCRing<Frame>
    let output: SPSCRing<FlowRecord>
    /// Application-state events to the sink (full: dropped and counted, never waited for).
    let events: SPSCRing<StateEvent>
    let quic: QUICTracker
    let tcpBudget: StreamBudget
    let tls: TLSTracker
    let http: HTTPTracker
    /// HTTP inside TLS; nil without a key source.
    let https: HTTPSTracker?
    let pool: FramePool
    let batchSize: Int
    let dropWhenFull: Bool
    let flows: FlowTable
    let reassembler: FragmentReassembler
    var counters = WorkerCounters()
    /// Set (releasing) when the worker has drained its input and flushed its flows.
    let finished = Atomic<Bool>(false)
    /// Packets processed so far, for progress reports (relaxed: statistics only).
    let progress = Atomic<UInt64>(0)

    private var packet = DecodedPacket()
    /// Set by `finish`: flow records wait for the sink even under the live drop policy.
    private var finishing = false
    private let liveClock: Bool
    /// When parked TLS connections were last looked at (their clock).
    private var lastParkedPoll: UInt64 = 0

    /// `liveClock`: parked TLS connections wait on the wall clock (live capture, where the key log line comes in
    /// real time); otherwise on the packets' clock (replay, where the capture's time is what passes).
    init(configuration c: PipelineConfiguration, pool: FramePool, liveClock: Bool = false) {
        self.liveClock = liveClock
        self.pool = pool
        self.batchSize = c.batchSize
        self.dropWhenFull = c.onFullRing == .drop
        input = SPSCRing(capacity: c.ringSize)
        // Every frame of the pool fits: returning a frame never waits.
        var returnCapacity = 2
        while returnCapacity < pool.frameCount + pool.jumboCount { returnCapacity <<= 1 }
        returns = SPSCRing(capacity: returnCapacity)
        output = SPSCRing(capacity: 8192)
        events = SPSCRing(capacity: 4096)
        tcpBudget = StreamBudget(capacity: c.tcpReassemblyMemcapBytes)
        quic = QUICTracker(budget: tcpBudget)
        tls = TLSTracker(budget: tcpBudget)
        http = HTTPTracker(budget: tcpBudget)
        let budget = tcpBudget
        https = c.tlsKeys.map { HTTPSTracker(keys: $0, keyWaitNanoseconds: c.tlsKeyWaitNanoseconds, maxHeldBytes: c.tlsMaxHeldBytes,
                                         budget: budget) }
        flows = FlowTable(capacity: c.maxFlowsPerWorker, idleTimeoutNanoseconds: c.flowIdleTimeoutNanoseconds,
                          subscribers: c.subscribers)
        reassembler = FragmentReassembler(memoryBudget: c.reassemblyMemoryBytes,
                                          timeoutNanoseconds: c.reassemblyTimeoutNanoseconds)
    }

    /// The worker thread's body; returns when the source has finished and the input ring is empty.
    func run(sourceFinished: borrowing Atomic<Bool>) {
        var backoff = Backoff()
        while true {
            let n = input.dequeueBatch(maxCount: batchSize) { frame in
                self.process(frame)
            }
            if n > 0 {
                returns.publish()
                progress.store(counters.packets, ordering: .relaxed)
                backoff.reset()
                continue
            }
            // Pairs with the source's releasing store after its last publish: if it says finished, every frame
            // it sent is visible, so one more empty dequeue means done.
            if sourceFinished.load(ordering: .acquiring) && input.consumerAvailableCount == 0 { break }
            pollParked()
            backoff.wait()
        }
        finish()
    }

    /// Ends the worker's run: flushes its flows and publishes its counters. Called by `run`, or by the source
    /// thread when the worker ran inline.
    func finish() {
        returns.publish()
        // The sink drains until every worker has finished: the last flows wait for room instead of being dropped.
        finishing = true
        flows.flush { e, reason in self.emit(e, reason) }  // every flow ends: its trackers' state with it
        // TLS connections still waiting for their secrets are given up: the run is over.
        https?.poll(now: counters.lastTimestamp, final: true) { self.publishEvent($0) }
        counters.reassemblyIncompleteAtEnd = UInt64(reassembler.flush())
        counters.streamBytesPeak = tcpBudget.peak
        counters.flows = flows.stats
        counters.quic = quic.counters
        counters.tls = tls.counters
        counters.http = http.counters
        if let https { counters.https = https.counters }
        counters.reassembly = reassembler.stats
        progress.store(counters.packets, ordering: .relaxed)
        // Pairs with the sink's acquiring load: every record this worker produced is published.
        finished.store(true, ordering: .releasing)
    }

    /// Ended TLS connections whose records wait for their secrets (the key log line may come after the
    /// connection's end): looked at when the worker is idle and every 1024 packets, at most once a millisecond of
    /// their clock (`liveClock`).
    @inline(__always)
    func pollParked() {
        guard let https, https.hasParked else { return }
        let now = liveClock ? realtimeNanoseconds() : counters.lastTimestamp
        guard now &- lastParkedPoll >= 1_000_000 else { return }
        lastParkedPoll = now
        https.poll(now: now) { self.publishEvent($0) }
    }

    /// Decodes one frame and hands it back to the source.
    @inline(__always)
    func process(_ frame: consuming Frame) {
        let bytes = pool.bytes(of: frame)
        let ts = frame.timestampNanoseconds
        let frameLength = frame.originalLength
        counters.packets &+= 1
        if counters.packets & 1023 == 0 { pollParked() }
        counters.bytes &+= UInt64(frameLength)
        if ts < counters.firstTimestamp { counters.firstTimestamp = ts }
        if ts > counters.lastTimestamp { counters.lastTimestamp = ts }
        var outcome = PacketDecoder.decode(bytes, linkType: frame.linkType, into: &packet)
        // Fragments: reassemble; a completed datagram continues decoding (and may itself be a fragment of an
        // inner IP layer, hence the loop; each round goes one layer deeper, at most 4: deeper nesting of
        // fragmented tunnels is counted as too many encapsulations).
        // Layers are counted once per frame, after the last round: `resume` adds the inner layers to the set.
        var rounds = 0
        var source = bytes
        while outcome == .fragment, rounds < 4 {
            rounds += 1
            switch reassembler.add(packet.fragment, bytes: source, packet: packet, now: ts) {
            case .incomplete:
                countLayers()
                returnFrame(frame)
                return
            case .refused(let reason, _):
                counters.errors[Int(reason.rawValue)] &+= 1
                countLayers()
                returnFrame(frame)
                return
            case .complete(let datagram, let proto):
                source = datagram
                outcome = PacketDecoder.resume(datagram: datagram, ipProtocol: proto, into: &packet)
            }
        }
        countLayers()
        switch outcome {
        case .complete:
            let slot = flows.track(packet, length: Int(frameLength), now: ts) { e, reason in self.emit(e, reason) }
            if packet.ipProtocol == IPProtocol.tcp, slot >= 0 {
                let payload = UnsafeRawBufferPointer(rebasing: source[packet.payloadOffset..<packet.payloadOffset + packet.payloadLength])
                let syn = packet.tcpFlags & TCPFlags.syn != 0 && packet.tcpFlags & TCPFlags.ack == 0
                // A segment the snap length cut: its stream continues after bytes the capture did not keep.
                // (Not for a reassembled datagram: its fragments' lengths were checked as they came.)
                let cut = rounds == 0 ? Int(packet.capturedShortBy) : 0
                if payload.count > 0 { extractTCP(payload, syn: syn, cut: cut, slot: slot, ts: ts) }
                if packet.tcpFlags & (TCPFlags.fin | TCPFlags.rst) != 0 { closing(slot: slot, ts: ts) }
            } else if packet.ipProtocol == IPProtocol.udp, packet.payloadLength > 0 {
                let payload = UnsafeRawBufferPointer(rebasing: source[packet.payloadOffset..<packet.payloadOffset + packet.payloadLength])
                if QUICTracker.mightBeInitial(payload) { extractQUIC(payload, slot: slot, ts: ts) }
            }
        case .notIP:
            counters.notIP &+= 1
        case .malformed(let reason):
            counters.errors[Int(reason.rawValue)] &+= 1
        case .fragment:
            counters.errors[Int(DecodeError.tooManyEncapsulations.rawValue)] &+= 1
        }
        returnFrame(frame)
    }

    /// Cold: a possible QUIC client Initial.
    @inline(never)
    private func extractQUIC(_ payload: UnsafeRawBufferPointer, slot: Int32, ts: UInt64) {
        let entry = slot >= 0 ? flows.entry(slot) : nil
        let device = entry.map { $0.hasDevice ? $0.device : packet.source } ?? packet.source
        guard let event = quic.handle(payload, packet: packet, device: device, ts: ts) else { return }
        publishEvent(event)
    }

    /// TCP segments: HTTP in both directions; the client's stream until its ClientHello (or not TLS). The flow's
    /// marks say which trackers follow it, so an unfollowed flow costs a few byte compares.
    @inline(__always)
    private func extractTCP(_ payload: UnsafeRawBufferPointer, syn: Bool, cut: Int, slot: Int32, ts: UInt64) {
        let entry = flows.entry(slot)
        var marks = entry.handles
        let fromClient = entry.clientAddress == packet.source && entry.clientPort == packet.sourcePort
        if marks.http > 0
            || (marks.http == 0 && HTTPTracker.mightStart(payload, handshake: entry.hasClientISN, serverPort: entry.serverPort))
        {
            http.handle(&marks.http, entry: entry, fromClient: fromClient, seq: packet.tcpSequence, syn: syn,
                        payload: payload, cut: cut, packet: packet, ts: ts) { self.publishEvent($0) }
        }
        if let https, marks.https > 0 || (marks.https == 0 && fromClient && HTTPSTracker.mightStart(payload)) {
            https.handle(&marks.https, entry: entry, fromClient: fromClient, seq: packet.tcpSequence, syn: syn,
                         payload: payload, packet: packet, ts: ts) { self.publishEvent($0) }
        }
        if fromClient, TLSTracker.wants(marks.tls, payload, handshake: entry.hasClientISN),
           let event = tls.handle(&marks.tls, seq: packet.tcpSequence, syn: syn, payload: payload, packet: packet,
                                  entry: entry, ts: ts)
        {
            publishEvent(event)
        }
        if marks != entry.handles { flows.setHandles(slot, marks) }
    }

    /// A FIN or RST: once the connection is reset or both sides have closed, its parsers finish now (what waited
    /// behind a hole is parsed, unanswered requests go out) instead of when the flow ends after its linger.
    @inline(never)
    private func closing(slot: Int32, ts: UInt64) {
        let entry = flows.entry(slot)
        var marks = entry.handles
        guard marks.http > 0 || marks.tls > 0 || marks.https > 0, entry.reset || (entry.finFromClient && entry.finFromServer) else { return }
        if marks.http > 0 {
            http.ended(marks.http, ts: ts) { self.publishEvent($0) }
            marks.http = ApplicationHandles.done
        }
        if marks.tls > 0 {
            tls.ended(marks.tls)
            marks.tls = ApplicationHandles.done
        }
        if marks.https > 0, let https {
            https.ended(marks.https, ts: ts) { self.publishEvent($0) }
            marks.https = ApplicationHandles.done
        }
        flows.setHandles(slot, marks)
    }

    private func publishEvent(_ event: StateEvent) {
        var pending: StateEvent? = event
        var backoff = Backoff()
        while let e = pending.take() {
            guard let back = events.enqueue(e) else { counters.events &+= 1; return }
            // Live capture never waits for the sink (dropped, counted); files and the final flush do.
            if dropWhenFull && !finishing { counters.eventsDropped &+= 1; return }
            pending = back
            backoff.wait()
        }
    }

    @inline(__always)
    private func returnFrame(_ frame: consuming Frame) {
        // Cannot fail: the return ring holds every frame of the pool.
        if let back = returns.enqueueUnpublished(frame) {
            returns.publish()
            pool.releaseLeaked(back)
        }
    }

    @inline(__always)
    private func countLayers() {
        var bits = packet.layers.rawValue
        while bits != 0 {
            let i = bits.trailingZeroBitCount
            counters.layerPackets[i] &+= 1
            bits &= bits &- 1
        }
        var n = packet.notices
        while n != 0 {
            let i = n.trailingZeroBitCount
            counters.notices[i] &+= 1
            n &= n &- 1
        }
    }

    private func emit(_ e: borrowing FlowEntry, _ reason: FlowEndReason) {
        tls.ended(e.handles.tls)
        if e.handles.http > 0 { http.ended(e.handles.http, ts: e.lastSeenNanoseconds) { self.publishEvent($0) } }
        if e.handles.https > 0, let https { https.ended(e.handles.https, ts: e.lastSeenNanoseconds) { self.publishEvent($0) } }
        var record = FlowRecord(e, reason: reason)
        var backoff = Backoff()
        while true {
            guard let back = output.enqueue(record) else { return }
            if dropWhenFull && !finishing {
                counters.flowRecordsDropped &+= 1
                return
            }
            counters.sinkFullWaits &+= 1
            record = back
            backoff.wait()
        }
    }
}
