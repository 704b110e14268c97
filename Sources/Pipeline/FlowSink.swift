import Decode
import Extract
import Rings
import Synchronization

/// Per-device totals kept by the sink.
public struct DeviceTotals: Sendable {
    public var flows: UInt64 = 0
    public var packets: UInt64 = 0
    public var bytes: UInt64 = 0
    /// When a flow of the device last ended, in the sink's own order (the count of flows absorbed then).
    public var lastSeen: UInt64 = 0
}

/// The end of the pipeline: collects finished flows from every worker. (The journal thread of a later issue takes
/// this place for state events.)
final class FlowSink: @unchecked Sendable {
    // @unchecked Sendable: stored vars are touched only by the sink thread until it is joined.
    let inputs: [SPSCRing<FlowRecord>]
    let eventInputs: [SPSCRing<StateEvent>]
    /// Called on the sink thread for every event (e.g. the JSONL writer).
    /// Takes each event (moved, not copied: the journal keeps it, and a copy would retain every string in it).
    let eventObserver: (@Sendable (consuming StateEvent) -> Void)?
    var serverNameEvents: UInt64 = 0
    var webLinkEvents: UInt64 = 0
    var flows: UInt64 = 0
    var flowsTCP: UInt64 = 0
    var flowsUDP: UInt64 = 0
    var flowsOther: UInt64 = 0
    var flowsWithoutDevice: UInt64 = 0
    var devices: [IPAddress: DeviceTotals] = [:]
    /// Devices kept at most: past it, the least recently seen are evicted (`devicesEvicted`), a sixteenth at a time.
    let maxDevices: Int
    var devicesEvicted: UInt64 = 0
    /// For a live run's statistics, read from other threads while the sink runs.
    let devicesNow = Atomic<Int>(0)
    let devicesEvictedNow = Atomic<UInt64>(0)
    /// Optional observer of every record (tests, and `--flows` output); called on the sink thread.
    let observer: (@Sendable (FlowRecord) -> Void)?

    init(inputs: [SPSCRing<FlowRecord>], events: [SPSCRing<StateEvent>] = [], maxDevices: Int = 262_144,
         observer: (@Sendable (FlowRecord) -> Void)?, eventObserver: (@Sendable (consuming StateEvent) -> Void)? = nil)
    {
        self.inputs = inputs
        self.eventInputs = events
        self.maxDevices = max(1, maxDevices)
        self.observer = observer
        self.eventObserver = eventObserver
        devices.reserveCapacity(min(4096, self.maxDevices + 1))
    }

    func run(workersFinished: () -> Bool) {
        // Flow records are not urgent: an idle sink sleeps 1 ms, not stealing a core from capture (2-core boxes).
        var backoff = Backoff(sleepNanoseconds: 1_000_000)
        while true {
            var got = 0
            for ring in inputs {
                got += ring.dequeueBatch(maxCount: 256) { record in self.absorb(record) }
            }
            for ring in eventInputs {
                got += ring.dequeueBatch(maxCount: 256) { event in self.absorb(event) }
            }
            if got > 0 { backoff.reset(); continue }
            // Workers publish their last record before setting `finished` (releasing); after seeing all finished
            // (acquiring), one more pass drains what is left.
            if workersFinished() {
                for ring in inputs { _ = ring.dequeueBatch(maxCount: ring.capacity) { record in self.absorb(record) } }
                for ring in eventInputs { _ = ring.dequeueBatch(maxCount: ring.capacity) { event in self.absorb(event) } }
                return
            }
            backoff.wait()
        }
    }

    private func absorb(_ e: consuming StateEvent) {
        switch e.kind {
        case .serverName: serverNameEvents &+= 1
        case .webLink: webLinkEvents &+= 1
        }
        eventObserver?(e)
    }

    private func absorb(_ r: FlowRecord) {
        flows &+= 1
        switch r.ipProtocol {
        case IPProtocol.tcp: flowsTCP &+= 1
        case IPProtocol.udp: flowsUDP &+= 1
        default: flowsOther &+= 1
        }
        if r.hasDevice {
            let seen = flows
            let added = devices[r.device] == nil
            devices[r.device, default: DeviceTotals()].flows &+= 1
            devices[r.device]!.packets &+= r.packets
            devices[r.device]!.bytes &+= r.bytes
            devices[r.device]!.lastSeen = seen
            if added {
                if devices.count > maxDevices { evictLeastRecent() }
                devicesNow.store(devices.count, ordering: .relaxed)
            }
        } else {
            flowsWithoutDevice &+= 1
        }
        observer?(r)
    }

    /// Evicts the least recently seen sixteenth of `maxDevices` (at least one): the cost of finding them (a sort
    /// of the ages) is paid once per that many new devices, not per flow.
    private func evictLeastRecent() {
        let batch = max(1, maxDevices / 16)
        let ages = devices.values.map(\.lastSeen).sorted()
        let cutoff = ages[min(batch, ages.count) - 1]
        var evicted = 0
        devices = devices.filter { _, t in
            if t.lastSeen <= cutoff && evicted < batch { evicted += 1; return false }
            return true
        }
        devicesEvicted &+= UInt64(evicted)
        devicesEvictedNow.store(devicesEvicted, ordering: .relaxed)
    }
}
