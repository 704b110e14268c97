// SPSCRing<UInt64> throughput between two threads pinned to two CPUs.
//
// The benchmark thread is the producer, pinned to CPU 0; a consumer thread pinned to CPU 1 runs for the whole
// benchmark, busy-polling the ring. One outer iteration moves 1,000,000 items (scaling factor .mega) and ends when
// the consumer has taken the last one, so the scaled throughput (*) is items/s and the scaled wall clock is
// ns/item. Variants: one item per enqueue/dequeue, and batches of 64 and 256 (enqueueBatch/dequeueBatch, one
// index store per batch on each side).

import Benchmark
import BenchmarkSupport
import Rings
import Synchronization

let producerCPU = 0
let consumerCPU = 1
let ringCapacity = 4096

final class RingRig: @unchecked Sendable {
    // @unchecked Sendable: `ring` is used by exactly one producer (the benchmark thread) and one consumer (the
    // rig's thread), as SPSCRing requires; `nextValue` is the producer's, `sum` the consumer's until joined.
    let ring = SPSCRing<UInt64>(capacity: ringCapacity)
    /// Items per enqueue/dequeue call; 1 uses `enqueue`/`dequeue`.
    let batch: Int
    /// Items the consumer has taken, published (releasing) after each dequeue.
    let consumed = Atomic<UInt64>(0)
    let stop = Atomic<Bool>(false)
    /// The next value to produce; values are 0, 1, 2... so the consumer's sum checks that nothing was lost.
    var nextValue: UInt64 = 0
    /// The consumer's sum of every value it took (read after join).
    var sum: UInt64 = 0
    var consumer: PosixThread?

    init(batch: Int) {
        self.batch = batch
        consumer = PosixThread(name: "ring-consumer", cpu: consumerCPU) { [self] in consume() }
    }

    private func consume() {
        var count: UInt64 = 0
        var total: UInt64 = 0
        while true {
            var n = 0
            if batch == 1 {
                if let v = ring.dequeue() {
                    total &+= v
                    n = 1
                }
            } else {
                n = ring.dequeueBatch(maxCount: batch) { v in total &+= v }
            }
            if n > 0 {
                count &+= UInt64(n)
                // Pairs with the producer's acquiring load at the end of an iteration.
                consumed.store(count, ordering: .releasing)
            } else if stop.load(ordering: .relaxed) {
                break
            }
        }
        sum = total
    }

    /// Produces `items` values as fast as the ring takes them, then waits until the consumer has taken them all.
    @inline(__always)
    func produce(_ items: Int) {
        var next = nextValue
        let end = next &+ UInt64(items)
        if batch == 1 {
            while next < end {
                if ring.enqueue(next) == nil { next &+= 1 }
            }
        } else {
            while next < end {
                _ = ring.enqueueBatch(maxCount: min(batch, Int(end &- next))) {
                    let v = next
                    next &+= 1
                    return v
                }
            }
        }
        nextValue = end
        while consumed.load(ordering: .acquiring) < end {}
    }

    /// Stops the consumer and checks it received every value exactly once.
    func finish() {
        stop.store(true, ordering: .relaxed)
        consumer?.join()
        consumer = nil
        let n = nextValue
        precondition(consumed.load(ordering: .acquiring) == n, "consumer took \(consumed.load(ordering: .acquiring)) of \(n) items")
        precondition(sum == (n == 0 ? 0 : n &* (n &- 1) / 2), "sum of consumed values is wrong: items were lost or duplicated")
    }
}

/// The rig of the running benchmark: each benchmark runs in a process of its own, so there is at most one.
nonisolated(unsafe) var currentRig: RingRig?

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 20,
        scalingFactor: .mega,
        maxDuration: .seconds(3),
        maxIterations: 10_000,
        thresholds: [
            .mallocCountTotal: BenchmarkThresholds(absolute: [.p0: 0, .p25: 0, .p50: 0, .p75: 0, .p90: 0,
                                                             .p99: 0, .p100: 0]),
            // Cross-core throughput on a shared machine varies a lot: flag only large regressions.
            .throughput: BenchmarkThresholds(relative: [.p50: 30]),
            .wallClock: BenchmarkThresholds(relative: [.p50: 30]),
        ])

    for (name, batch) in [("single", 1), ("batch64", 64), ("batch256", 256)] {
        Benchmark("Ring.\(name)", configuration: configuration) { benchmark in
            guard let rig = currentRig else { return benchmark.error("ring rig not set up") }
            // The benchmark thread is the producer. Pinning is idempotent; doing it here (not in setup, which may
            // run on another thread) pins the thread that actually produces.
            pinCurrentThread(to: producerCPU)
            rig.produce(benchmark.scaledIterations.count)
        } setup: {
            guard allowedCPUCount() >= 2 else { throw RingSetupError.needsTwoCPUs }
            currentRig = RingRig(batch: batch)
        } teardown: {
            currentRig?.finish()
            currentRig = nil
        }
    }
}

enum RingSetupError: Error, CustomStringConvertible {
    case needsTwoCPUs
    var description: String { "the ring benchmark needs two CPUs (0 and 1) in this process's affinity mask" }
}
