// End-to-end ReplayPipeline.run(files:) on synthetic captures of exactly 1,000,000 packets, with application state
// extraction (HTTP web_link, TLS and QUIC server_name events: always on in a replay).
//
// The captures (SyntheticTraffic, the mixes `statetap generate --mix mixed|http` writes, classic pcap) are
// generated at setup into /tmp and reused by later runs. One outer iteration replays a whole file: libpcap read,
// frame pool, rings, decode worker, flow table, reassembly, extraction, sink (events are counted, not written).
// The scaling factor is .mega = the packet count, so the scaled throughput (*) is packets/s and the scaled wall
// clock is ns/packet, both measured around run(files:) (pool and table allocation included).
// `pipelinePacketsPerSecond` is the pipeline's own figure (its summary's packetsPerSecond, the number
// `statetap replay --json` prints as packets_per_second); `events` the events the sink received;
// `mallocsPerEvent` and `mallocsPerKilopacket` the run's allocations over those (AllocationsBenchmark splits
// them into a fixed cost and a cost per event, and checks them).

import Benchmark
import BenchmarkSupport
import PacketCraft
import Pipeline

/// Packets in a capture: must equal the scaling factor, so one scaled iteration is one packet.
let capturePackets = 1_000_000

enum ReplayMetrics {
    static let pipelinePacketsPerSecond = BenchmarkMetric.custom(
        "pipelinePacketsPerSecond", polarity: .prefersLarger, useScalingFactor: false)
    static let events = BenchmarkMetric.custom("events", polarity: .prefersLarger, useScalingFactor: false)
    static let mallocsPerEvent = BenchmarkMetric.custom(
        "mallocsPerEvent", polarity: .prefersSmaller, useScalingFactor: false)
    static let mallocsPerKilopacket = BenchmarkMetric.custom(
        "mallocsPerKilopacket", polarity: .prefersSmaller, useScalingFactor: false)
}

struct ReplayError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Replays `path` once with `configuration`; fails the benchmark when a packet or an event went missing.
func replay(_ benchmark: Benchmark, path: String, configuration: PipelineConfiguration) throws {
    let run = try CountedReplay(path, configuration: configuration)
    let summary = run.summary
    guard summary.counters.packets == UInt64(capturePackets), summary.readErrors.isEmpty else {
        throw ReplayError(message: "replayed \(summary.counters.packets) of \(capturePackets) packets; "
            + "read errors: \(summary.readErrors)")
    }
    guard summary.counters.eventsDropped == 0, run.events > 0 else {
        throw ReplayError(message: "\(run.events) events, \(summary.counters.eventsDropped) dropped")
    }
    benchmark.measurement(ReplayMetrics.pipelinePacketsPerSecond, Int(summary.packetsPerSecond))
    benchmark.measurement(ReplayMetrics.events, run.events)
    // No count in warm-up iterations: Benchmark enables malloc counting after them (and records nothing from them).
    if run.mallocs > 0 {
        benchmark.measurement(ReplayMetrics.mallocsPerEvent, run.mallocs / run.events)
        benchmark.measurement(ReplayMetrics.mallocsPerKilopacket, run.mallocs * 1000 / run.packets)
    }
    blackHole(summary.flows)
}

let benchmarks: @Sendable () -> Void = {
    precondition(BenchmarkScalingFactor.mega.rawValue == capturePackets)
    let configuration = Benchmark.Configuration(
        metrics: [.throughput, .wallClock, .mallocCountTotal, ReplayMetrics.pipelinePacketsPerSecond,
                  ReplayMetrics.events, ReplayMetrics.mallocsPerEvent, ReplayMetrics.mallocsPerKilopacket],
        timeUnits: .nanoseconds,
        warmupIterations: 1,
        scalingFactor: .mega,
        maxDuration: .seconds(20),
        maxIterations: 10,
        thresholds: [
            .throughput: BenchmarkThresholds(relative: [.p50: 25]),
            .wallClock: BenchmarkThresholds(relative: [.p50: 25]),
        ])

    // Each capture with the CLI's defaults (`statetap replay FILE`: one worker, threads not pinned), and pinned:
    // source and sink on CPU 0, worker on CPU 1 (`--cpus 0,1`). The mixed capture keeps its earlier names.
    for (prefix, mix) in [("Replay", SyntheticTraffic.Mix.mixed), ("Replay.http", .http)] {
        Benchmark("\(prefix).default", configuration: configuration) { benchmark, path in
            try replay(benchmark, path: path, configuration: PipelineConfiguration())
        } setup: {
            try ReplayCapture.ensure(packets: capturePackets, mix: mix)
        }

        Benchmark("\(prefix).pinned", configuration: configuration) { benchmark, path in
            var c = PipelineConfiguration()
            c.cpus = [0, 1]
            try replay(benchmark, path: path, configuration: c)
        } setup: {
            try ReplayCapture.ensure(packets: capturePackets, mix: mix)
        }
    }
}
