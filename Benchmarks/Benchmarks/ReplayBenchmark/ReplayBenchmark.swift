// End-to-end ReplayPipeline.run(files:) on a synthetic capture of exactly 1,000,000 packets.
//
// The capture (SyntheticTraffic, the mix `statetap generate` writes, classic pcap) is generated at setup into
// /tmp and reused by later runs. One outer iteration replays the whole file: libpcap read, frame pool, rings,
// decode worker, flow table, reassembly, sink. The scaling factor is .mega = the packet count, so the scaled
// throughput (*) is packets/s and the scaled wall clock is ns/packet, both measured around run(files:) (pool and
// table allocation included). `pipelinePacketsPerSecond` is the pipeline's own figure (its summary's
// packetsPerSecond, the number `statetap replay --json` prints as packets_per_second).

import Benchmark
import BenchmarkSupport
import Pipeline

/// Packets in the capture: must equal the scaling factor, so one scaled iteration is one packet.
let capturePackets = 1_000_000

enum ReplayMetrics {
    static let pipelinePacketsPerSecond = BenchmarkMetric.custom(
        "pipelinePacketsPerSecond", polarity: .prefersLarger, useScalingFactor: false)
}

struct ReplayError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Replays `path` once with `configuration`; fails the benchmark when a packet went missing.
func replay(_ benchmark: Benchmark, path: String, configuration: PipelineConfiguration) throws {
    let pipeline = try ReplayPipeline(configuration: configuration)
    let summary = try pipeline.run(files: [path])
    guard summary.counters.packets == UInt64(capturePackets), summary.readErrors.isEmpty else {
        throw ReplayError(message: "replayed \(summary.counters.packets) of \(capturePackets) packets; "
            + "read errors: \(summary.readErrors)")
    }
    benchmark.measurement(ReplayMetrics.pipelinePacketsPerSecond, Int(summary.packetsPerSecond))
    blackHole(summary.flows)
}

let benchmarks: @Sendable () -> Void = {
    precondition(BenchmarkScalingFactor.mega.rawValue == capturePackets)
    let configuration = Benchmark.Configuration(
        metrics: [.throughput, .wallClock, .mallocCountTotal, ReplayMetrics.pipelinePacketsPerSecond],
        timeUnits: .nanoseconds,
        warmupIterations: 1,
        scalingFactor: .mega,
        maxDuration: .seconds(20),
        maxIterations: 10,
        thresholds: [
            .throughput: BenchmarkThresholds(relative: [.p50: 25]),
            .wallClock: BenchmarkThresholds(relative: [.p50: 25]),
        ])

    // The CLI's defaults (`statetap replay FILE`): one worker, threads not pinned.
    Benchmark("Replay.default", configuration: configuration) { benchmark, path in
        try replay(benchmark, path: path, configuration: PipelineConfiguration())
    } setup: {
        try ReplayCapture.ensure(packets: capturePackets)
    }

    // Source on CPU 0, worker on CPU 1, sink on CPU 0 (`--cpus 0,1`).
    Benchmark("Replay.pinned", configuration: configuration) { benchmark, path in
        var c = PipelineConfiguration()
        c.cpus = [0, 1]
        try replay(benchmark, path: path, configuration: c)
    } setup: {
        try ReplayCapture.ensure(packets: capturePackets)
    }
}
