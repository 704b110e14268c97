// PacketDecoder.decode over in-memory frames, per packet.
//
// 1000 frames are built once with PacketCraft (see FrameKind for the mix) and copied into one contiguous buffer.
// The scaling factor is .kilo and each outer iteration decodes exactly those 1000 frames, one per
// `benchmark.scaledIterations` step: the scaled figures (marked * in the output) are per packet — wall clock in
// ns/packet, throughput in packets/s.

import Benchmark
import BenchmarkSupport
import Decode

/// Frames per outer iteration: must equal the scaling factor, so one scaled iteration is one packet.
let framesPerIteration = 1000

/// What the measured loop needs, built once per benchmark process.
final class DecodeState: @unchecked Sendable {
    // @unchecked Sendable: only the benchmark thread touches it after setup.
    let frames: FrameSet
    /// The packet decoded into lives on the heap, as a worker's does (a stored property of a class), so the
    /// decoder's stores cannot be optimized away.
    let packet: UnsafeMutablePointer<DecodedPacket>

    init(kinds: [FrameKind]) throws {
        var factory = FrameFactory()
        frames = FrameSet(factory.frames(count: framesPerIteration, kinds: kinds))
        if let problem = frames.validate() { throw BenchmarkSetupError(message: problem) }
        packet = .allocate(capacity: 1)
        packet.initialize(to: DecodedPacket())
    }

    deinit { packet.deallocate() }
}

struct BenchmarkSetupError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Decodes frame `i` of the set for each scaled iteration and folds what a flow table would read (layers,
/// addresses, ports, TCP flags, TEID, payload span) into a checksum that goes to `blackHole`.
@inline(__always)
func decodeAll(_ benchmark: Benchmark, _ state: DecodeState) {
    let frames = state.frames
    let p = state.packet
    var checksum: UInt64 = 0
    for i in benchmark.scaledIterations {
        let outcome = PacketDecoder.decode(frames.frame(i), linkType: .ethernet, into: &p.pointee)
        if case .complete = outcome { checksum &+= 1 }
        checksum &+= UInt64(p.pointee.layers.rawValue) ^ p.pointee.source.low ^ p.pointee.destination.high
            ^ UInt64(p.pointee.sourcePort) << 16 ^ UInt64(p.pointee.destinationPort) << 32
            ^ UInt64(p.pointee.tcpFlags) << 48 ^ UInt64(p.pointee.teid) ^ UInt64(p.pointee.payloadOffset)
            ^ UInt64(p.pointee.payloadLength) << 8
    }
    blackHole(checksum)
}

let benchmarks: @Sendable () -> Void = {
    precondition(BenchmarkScalingFactor.kilo.rawValue == framesPerIteration)
    let configuration = Benchmark.Configuration(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 100,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1_000_000,
        thresholds: [
            // Any allocation while decoding is a regression.
            .mallocCountTotal: BenchmarkThresholds(absolute: [.p0: 0, .p25: 0, .p50: 0, .p75: 0, .p90: 0,
                                                             .p99: 0, .p100: 0]),
            // Time is noisy on a shared 2-core machine: flag only large slowdowns (percent, per percentile).
            .wallClock: BenchmarkThresholds(relative: [.p25: 15, .p50: 15]),
            .throughput: BenchmarkThresholds(relative: [.p50: 15, .p75: 15]),
        ])

    // The mix: every kind, by its weight.
    Benchmark("Decode.mixed", configuration: configuration) { benchmark, state in
        decodeAll(benchmark, state)
    } setup: {
        try DecodeState(kinds: FrameKind.allCases)
    }

    // One kind at a time, to see what each encapsulation costs.
    for kind in FrameKind.allCases {
        Benchmark("Decode.\(kind.rawValue)", configuration: configuration) { benchmark, state in
            decodeAll(benchmark, state)
        } setup: {
            try DecodeState(kinds: [kind])
        }
    }
}
