// Allocation checks of the per-packet path: decode + FlowTable.track must not allocate in steady state.
//
// One outer iteration handles a batch of 1000 frames (scaling factor .one, so malloc counts are per batch and
// never rounded away). mallocCountTotal carries zero-tolerance thresholds at every percentile: against a baseline
// of 0 (`baseline check`) or the static threshold in Thresholds/ (`thresholds check`), one malloc fails the check.

import Benchmark
import BenchmarkSupport
import Decode
import Flows
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
}
