// The state journal: records appended per second (the journal thread encodes, batches, compresses with LZ4 and
// writes; one core), compression ratio on URL-heavy records, a full read, and one device's history read through
// the segment indexes against a full scan; and the state store applying records (the journal thread's other
// work when a store is attached, and the whole of a start's rebuild but the decoding).
//
// Records come from Journal.SampleRecords (web links to CDN-like hosts with ids in their paths, cache headers,
// validators; every 8th a server_name), 200,000 built once and appended 5 times per iteration: the scaling factor
// is .mega, so one scaled iteration is one record (wall clock ns/record, throughput records/s).

import Benchmark
import Decode
import Foundation
import Journal

let recordsPerIteration = 1_000_000
let distinct = 200_000

enum JournalMetrics {
    static let compressionRatioX100 = BenchmarkMetric.custom("compressionRatioX100", polarity: .prefersLarger,
                                                             useScalingFactor: false)
    /// CPU time of the journal thread per record: its cost on one core, whatever else the machine runs.
    static let threadCPUPerRecord = BenchmarkMetric.custom("journalThreadCPUNanosecondsPerRecord", polarity: .prefersSmaller,
                                                           useScalingFactor: false)
    static let bytesReadIndexed = BenchmarkMetric.custom("bytesReadWithIndex", polarity: .prefersSmaller,
                                                         useScalingFactor: false)
    static let bytesReadScan = BenchmarkMetric.custom("bytesReadFullScan", polarity: .prefersSmaller,
                                                      useScalingFactor: false)
}

final class Fixture: @unchecked Sendable {
    let records: [JournalRecord]
    let directory: String
    init() {
        var sample = SampleRecords()
        records = (0..<distinct).map { sample.record($0) }
        directory = NSTemporaryDirectory() + "statetap-journal-bench-\(UUID().uuidString)"
    }
    func clear() { try? FileManager.default.removeItem(atPath: directory) }
}

nonisolated(unsafe) var fixture: Fixture?

func openJournal(_ f: Fixture, segmentBytes: Int = 64 << 20) throws -> JournalWriter {
    f.clear()
    var o = JournalOptions()
    o.fsync = .never
    o.dropWhenFull = false
    o.segmentBytes = segmentBytes
    let w = try JournalWriter(directory: f.directory, options: o)
    w.start()
    return w
}

/// The fixture's records, each appended 5 times: a copy each time (the producer retains what the journal thread
/// releases, as no producer in statetap does; kept as the benchmark's first measure).
func writeJournal(_ f: Fixture, segmentBytes: Int = 64 << 20) throws -> JournalStats {
    let w = try openJournal(f, segmentBytes: segmentBytes)
    for _ in 0..<(recordsPerIteration / distinct) {
        for r in f.records { w.append(r) }
    }
    w.finish()
    return w.currentStats
}

let benchmarks: @Sendable () -> Void = {
    precondition(BenchmarkScalingFactor.mega.rawValue == recordsPerIteration)
    let config = Benchmark.Configuration(
        metrics: [.throughput, .wallClock, JournalMetrics.compressionRatioX100, JournalMetrics.threadCPUPerRecord],
        timeUnits: .nanoseconds, warmupIterations: 1, scalingFactor: .mega, maxDuration: .seconds(30), maxIterations: 5)

    Benchmark("Journal.append", configuration: config) { benchmark in
        let f = fixture!
        benchmark.startMeasurement()
        let stats = try writeJournal(f)
        benchmark.stopMeasurement()
        guard stats.written == UInt64(recordsPerIteration) else {
            throw JournalError(.io, "wrote \(stats.written) of \(recordsPerIteration) records")
        }
        benchmark.measurement(JournalMetrics.compressionRatioX100, Int(stats.rawBytes * 100 / max(stats.compressedBytes, 1)))
        benchmark.measurement(JournalMetrics.threadCPUPerRecord, Int(stats.threadCPUNanoseconds / stats.written))
    } setup: {
        fixture = Fixture()
    } teardown: {
        fixture?.clear()
    }

    // As the pipeline's sink hands events over: 1,000,000 distinct records, each moved in once (built before the
    // measurement, every iteration).
    Benchmark("Journal.append.moved", configuration: config) { benchmark in
        let f = fixture!
        var sample = SampleRecords()
        var records: [JournalRecord?] = (0..<recordsPerIteration).map { sample.record($0) }
        benchmark.startMeasurement()
        let w = try openJournal(f)
        for i in records.indices { w.append(records[i].take()!) }
        w.finish()
        benchmark.stopMeasurement()
        let stats = w.currentStats
        guard stats.written == UInt64(recordsPerIteration) else {
            throw JournalError(.io, "wrote \(stats.written) of \(recordsPerIteration) records")
        }
        benchmark.measurement(JournalMetrics.compressionRatioX100, Int(stats.rawBytes * 100 / max(stats.compressedBytes, 1)))
        benchmark.measurement(JournalMetrics.threadCPUPerRecord, Int(stats.threadCPUNanoseconds / stats.written))
    } setup: {
        fixture = Fixture()
    } teardown: {
        fixture?.clear()
    }

    Benchmark("Journal.readAll", configuration: config) { benchmark in
        let f = fixture!
        var n = 0
        benchmark.startMeasurement()
        _ = try JournalReader(directory: f.directory).read { _ in n += 1 }
        benchmark.stopMeasurement()
        guard n == recordsPerIteration else { throw JournalError(.io, "read \(n) records") }
    } setup: {
        fixture = Fixture()
        _ = try writeJournal(fixture!, segmentBytes: 8 << 20)
    } teardown: {
        fixture?.clear()
    }

    // The state store as the journal thread feeds it (the observer runs for every record it takes) and as a start
    // rebuilds it: 1M records applied to an empty store (5000 devices, ~175,000 links), records/s.
    Benchmark("StateStore.apply", configuration: config) { benchmark in
        let f = fixture!
        let store = StateStore()
        benchmark.startMeasurement()
        for _ in 0..<(recordsPerIteration / distinct) {
            for i in f.records.indices { store.apply(f.records[i]) }
        }
        benchmark.stopMeasurement()
        guard store.stats.recordsApplied == UInt64(recordsPerIteration) else {
            throw JournalError(.io, "applied \(store.stats.recordsApplied) of \(recordsPerIteration) records")
        }
    } setup: {
        fixture = Fixture()
    } teardown: {
        fixture?.clear()
    }

    // One device's history (1 of 5000 devices) in a journal of 1M records in 8 MB segments: through the indexes
    // (only the batches holding the device are read) and by a full scan. Not scaled: wall clock per read.
    let deviceConfig = Benchmark.Configuration(
        metrics: [.wallClock, JournalMetrics.bytesReadIndexed, JournalMetrics.bytesReadScan],
        timeUnits: .microseconds, warmupIterations: 1, maxDuration: .seconds(20), maxIterations: 20)
    for useIndex in [true, false] {
        Benchmark("Journal.deviceHistory.\(useIndex ? "index" : "scan")", configuration: deviceConfig) { benchmark in
            let f = fixture!
            let device = f.records[0].device
            var n = 0
            benchmark.startMeasurement()
            let report = try JournalReader(directory: f.directory).read(device: device, useIndex: useIndex) { _ in n += 1 }
            benchmark.stopMeasurement()
            guard n > 0 else { throw JournalError(.io, "no records for \(device)") }
            benchmark.measurement(useIndex ? JournalMetrics.bytesReadIndexed : JournalMetrics.bytesReadScan, report.bytesRead)
        } setup: {
            fixture = Fixture()
            _ = try writeJournal(fixture!, segmentBytes: 8 << 20)
        } teardown: {
            fixture?.clear()
        }
    }
}
