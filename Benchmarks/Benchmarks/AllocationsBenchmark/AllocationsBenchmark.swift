// Allocation checks of the per-packet path.
//
// decode+track: decode + FlowTable.track must not allocate in steady state. One outer iteration handles a batch of
// 1000 frames (scaling factor .one, so malloc counts are per batch and never rounded away). mallocCountTotal
// carries zero-tolerance thresholds at every percentile: against a baseline of 0 (`baseline check`) or the static
// threshold in Thresholds/ (`thresholds check`), one malloc fails the check.
//
// replay-*: a whole replay with extraction (ReplayPipeline.run on a 100,000-packet capture) may allocate only to
// set the run up and where an event is emitted. Each iteration replays a one-packet capture (the run's fixed
// cost: pool, rings, tables, threads) and then the capture; `mallocsOverBudget` is what the capture's run
// allocated beyond fixed cost + slack + budget per event x events, and its threshold is 0. An allocation per
// packet adds packets/events allocations per event (about 11 in the mixed capture, 38 in the HTTP one): over the
// budget's headroom, so the check fails.

import Benchmark
import BenchmarkSupport
import Decode
import Flows
import PacketCraft
#if canImport(Glibc)
import Glibc
#endif

/// Frames per batch (one outer iteration).
let batchSize = 1000

final class FlowState: @unchecked Sendable {
    // @unchecked Sendable: only the benchmark thread touches it after setup.
    let frames: FrameSet
    let flows: FlowTable
    let packet: UnsafeMutablePointer<DecodedPacket>
    /// Capture time of the batch's first packet; each packet is 1 µs after the previous one. Every batch reuses
    /// the same times, so no flow ever goes idle.
    let startNanoseconds: UInt64 = 1_764_000_000_000_000_000
    /// Flows ended (evicted) so far: counted so the callback has something to do.
    var ended = 0
    /// STATETAP_BENCH_INJECT_MALLOC set: allocate once per batch, to see the threshold check fail.
    let injectMalloc = getenv("STATETAP_BENCH_INJECT_MALLOC") != nil

    init(flowCapacity: Int) throws {
        var factory = FrameFactory()
        frames = FrameSet(factory.frames(count: batchSize))
        if let problem = frames.validate() { throw SetupError(message: problem) }
        flows = FlowTable(capacity: flowCapacity, idleTimeoutNanoseconds: 120_000_000_000)
        packet = .allocate(capacity: 1)
        packet.initialize(to: DecodedPacket())
        // Warm-up: every flow of the batch exists before measuring (when the table is large enough to hold them).
        runBatch()
        runBatch()
    }

    deinit { packet.deallocate() }

    /// Decodes every frame of the batch and tracks it; returns a checksum of the flow slots.
    @inline(__always)
    @discardableResult
    func runBatch() -> Int {
        var slots = 0
        for i in 0..<frames.count {
            guard case .complete = PacketDecoder.decode(frames.frame(i), linkType: .ethernet, into: &packet.pointee)
            else { continue }
            slots &+= Int(flows.track(packet.pointee, length: packet.pointee.wireLength, now: startNanoseconds &+ UInt64(i) &* 1000) { _, _ in
                self.ended &+= 1
            })
        }
        return slots
    }
}

/// Packets in each replay capture.
let replayPackets = 100_000

/// Allocations a run may make beyond the one-packet run's, whatever the number of events: growth of the tables
/// sized by the traffic (dictionaries doubling), one-time runtime metadata.
let replaySlack = 2_000

enum ReplayAllocationMetrics {
    /// The run's allocations beyond the fixed cost, per event the sink received.
    static let perEvent = BenchmarkMetric.custom("mallocsPerEvent", polarity: .prefersSmaller, useScalingFactor: false)
    /// The same per 1000 packets.
    static let perKilopacket = BenchmarkMetric.custom(
        "mallocsPerKilopacket", polarity: .prefersSmaller, useScalingFactor: false)
    /// Allocations beyond fixed cost + slack + budget per event x events (0 when within budget).
    static let overBudget = BenchmarkMetric.custom(
        "mallocsOverBudget", polarity: .prefersSmaller, useScalingFactor: false)
    /// Events the sink received, and the fixed cost measured: to read the other figures against.
    static let events = BenchmarkMetric.custom("events", polarity: .prefersLarger, useScalingFactor: false)
    static let fixedCost = BenchmarkMetric.custom("mallocsFixed", polarity: .prefersSmaller, useScalingFactor: false)
}

/// A replay capture and its budget.
final class ReplayAllocationState: @unchecked Sendable {
    // @unchecked Sendable: immutable after init.
    let capture: String
    /// The first packet of the same capture: a run that sets everything up and decodes one packet.
    let onePacket: String
    let perEventBudget: Int

    init(mix: SyntheticTraffic.Mix, perEventBudget: Int) throws {
        capture = try ReplayCapture.ensure(packets: replayPackets, mix: mix)
        onePacket = try ReplayCapture.ensure(packets: 1, mix: mix)
        self.perEventBudget = perEventBudget
    }

    func measure(_ benchmark: Benchmark) throws {
        let fixed = try CountedReplay(onePacket)
        let run = try CountedReplay(capture)
        guard run.packets == replayPackets, run.summary.readErrors.isEmpty, run.summary.counters.eventsDropped == 0,
              run.events > 0
        else {
            throw SetupError(message: "replayed \(run.packets) of \(replayPackets) packets, \(run.events) events "
                + "(\(run.summary.counters.eventsDropped) dropped), read errors \(run.summary.readErrors)")
        }
        // The pool and the tables are allocated in every run: no count means the interposer is not counting, as in
        // warm-up iterations (Benchmark enables counting after them, and records nothing from them either).
        guard fixed.mallocs > 0 else { return }
        let variable = max(0, run.mallocs - fixed.mallocs)
        let budget = fixed.mallocs + replaySlack + perEventBudget * run.events
        benchmark.measurement(ReplayAllocationMetrics.overBudget, max(0, run.mallocs - budget))
        benchmark.measurement(ReplayAllocationMetrics.perEvent, variable / run.events)
        benchmark.measurement(ReplayAllocationMetrics.perKilopacket, variable * 1000 / run.packets)
        benchmark.measurement(ReplayAllocationMetrics.events, run.events)
        benchmark.measurement(ReplayAllocationMetrics.fixedCost, fixed.mallocs)
    }
}

struct SetupError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

let benchmarks: @Sendable () -> Void = {
    let zero = BenchmarkThresholds(absolute: [.p0: 0, .p25: 0, .p50: 0, .p75: 0, .p90: 0, .p99: 0, .p100: 0])
    let configuration = Benchmark.Configuration(
        metrics: [.mallocCountTotal, .throughput, .wallClock],
        timeUnits: .microseconds,
        warmupIterations: 10,
        scalingFactor: .one,
        maxDuration: .seconds(2),
        maxIterations: 100_000,
        thresholds: [
            .mallocCountTotal: zero,
            .wallClock: BenchmarkThresholds(relative: [.p50: 25]),
            .throughput: BenchmarkThresholds(relative: [.p50: 25]),
        ])

    // Steady state: every flow of the batch is in the table (the set has at most 128 devices x 2 ports x 16
    // servers flows per kind, far fewer in 1000 frames); each packet finds its flow and updates it.
    Benchmark("Allocations.decode+track", configuration: configuration) { benchmark, state in
        for _ in benchmark.scaledIterations {
            blackHole(state.runBatch())
            if state.injectMalloc { blackHole(ContiguousArray<UInt8>(repeating: 0, count: 64)) }
        }
    } setup: {
        try FlowState(flowCapacity: 65_536)
    }

    // Churn: a table too small for the batch's flows, so most packets evict the least recently used flow and
    // create their own. Creation and eviction reuse preallocated slots: still no allocation.
    Benchmark("Allocations.decode+track-evicting", configuration: configuration) { benchmark, state in
        for _ in benchmark.scaledIterations {
            blackHole(state.runBatch())
        }
        blackHole(state.ended)
    } setup: {
        try FlowState(flowCapacity: 64)
    }

    // Replays with extraction. Counts are deterministic (same file, same code): a few iterations suffice.
    let replayConfiguration = Benchmark.Configuration(
        metrics: [.mallocCountTotal, .wallClock, ReplayAllocationMetrics.overBudget, ReplayAllocationMetrics.perEvent,
                  ReplayAllocationMetrics.perKilopacket, ReplayAllocationMetrics.events,
                  ReplayAllocationMetrics.fixedCost],
        timeUnits: .milliseconds,
        warmupIterations: 1,
        scalingFactor: .one,
        maxDuration: .seconds(10),
        maxIterations: 3,
        thresholds: [ReplayAllocationMetrics.overBudget: zero])

    // Budgets per event, from what parsing and pairing one request/response and building its web_link cost
    // (HTTPStreamParser splits lines and makes Strings per header; the response keeps ~4 headers in the mixed
    // capture, ~12 in the HTTP one), with about 10% headroom; the per-connection state (HTTP connection, TLS
    // stream, their buffers) falls in it too. Lower them when parsing allocates less.
    for (name, mix, perEvent) in [("replay-mixed", SyntheticTraffic.Mix.mixed, 64), ("replay-http", .http, 88)] {
        Benchmark("Allocations.\(name)", configuration: replayConfiguration) { benchmark, state in
            try state.measure(benchmark)
        } setup: {
            try ReplayAllocationState(mix: mix, perEventBudget: perEvent)
        }
    }
}
