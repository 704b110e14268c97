import MallocInterposerSwift
import Pipeline

/// Allocations (malloc, calloc, realloc... on every thread) counted by Benchmark's malloc interposer. It counts
/// only while the running benchmark records `mallocCountTotal`: benchmarks reading it must have that metric.
public enum MallocCounter {
    public static var count: Int { MallocInterposerSwift.getStatistics().mallocCount }
}

/// One `ReplayPipeline.run(files:)` and the allocations made while it ran (source, workers and sink threads).
public struct CountedReplay {
    public let summary: PipelineSummary
    public let mallocs: Int

    /// Events the sink received (web_link and server_name).
    public var events: Int { Int(summary.webLinkEvents + summary.serverNameEvents) }
    public var packets: Int { Int(summary.counters.packets) }

    /// Replays `path` once with `configuration` (no event observer: events are counted, not written).
    public init(_ path: String, configuration: PipelineConfiguration = PipelineConfiguration()) throws {
        let pipeline = try ReplayPipeline(configuration: configuration)
        let before = MallocCounter.count
        summary = try pipeline.run(files: [path])
        mallocs = MallocCounter.count - before
    }
}
