import Synchronization
import Testing
@testable import Rings

#if canImport(Glibc)
import Glibc
#endif

@Suite("SPSC ring")
struct SPSCRingTests {
    @Test("items come out in the order they went in, across many wraps of the slots")
    func fifoOrder() {
        let ring = SPSCRing<Int>(capacity: 8)
        var next = 0, expected = 0
        for round in 0..<1000 {
            let n = round % 9
            for _ in 0..<n where ring.enqueue(next) == nil { next += 1 }
            while let v = ring.dequeue() {
                #expect(v == expected)
                expected += 1
            }
        }
        #expect(expected == next)
        #expect(next > 3000)
    }

    @Test("a full ring hands the element back and keeps what it holds")
    func fullRing() {
        let ring = SPSCRing<Int>(capacity: 4)
        for i in 0..<4 { #expect(ring.enqueue(i) == nil) }
        #expect(ring.enqueue(99) == 99)
        #expect(ring.producerFreeCount == 0)
        #expect(ring.dequeue() == 0)
        #expect(ring.enqueue(4) == nil)
        var out: [Int] = []
        _ = ring.dequeueBatch(maxCount: 10) { out.append($0) }
        #expect(out == [1, 2, 3, 4])
        #expect(ring.dequeue() == nil)
    }

    @Test("the free-running UInt32 indices wrap around correctly", arguments: [UInt32.max - 5, UInt32.max, 0])
    func indexWrap(start: UInt32) {
        let ring = SPSCRing<UInt32>(capacity: 4, startingIndex: start)
        var produced: UInt32 = 0, consumed: UInt32 = 0
        for _ in 0..<50 {
            let n = ring.enqueueBatch(maxCount: 3) {
                defer { produced += 1 }
                return produced
            }
            #expect(n <= 3)
            _ = ring.dequeueBatch(maxCount: 2) { v in
                #expect(v == consumed)
                consumed += 1
            }
        }
        while let v = ring.dequeue() { #expect(v == consumed); consumed += 1 }
        #expect(consumed == produced)
        #expect(produced > 40)
    }

    @Test("batches respect the room left and the count asked for")
    func batchLimits() {
        let ring = SPSCRing<Int>(capacity: 16)
        var i = 0
        #expect(ring.enqueueBatch(maxCount: 10) { defer { i += 1 }; return i } == 10)
        #expect(ring.enqueueBatch(maxCount: 10) { defer { i += 1 }; return i } == 6)  // only 6 slots left
        #expect(ring.enqueueBatch(maxCount: 10) { Optional(0) } == 0)
        var got: [Int] = []
        #expect(ring.dequeueBatch(maxCount: 5) { got.append($0) } == 5)
        #expect(got == [0, 1, 2, 3, 4])
        // A producer that runs dry stops the batch early.
        var left = 2
        #expect(ring.enqueueBatch(maxCount: 5) { left > 0 ? { left -= 1; return 100 }() : nil } == 2)
        #expect(ring.consumerAvailableCount == 13)
    }

    @Test("unpublished elements stay invisible until publish()")
    func publishGate() {
        let ring = SPSCRing<Int>(capacity: 8)
        #expect(ring.enqueueUnpublished(1) == nil)
        #expect(ring.enqueueUnpublished(2) == nil)
        #expect(ring.unpublishedCount == 2)
        #expect(ring.dequeue() == nil)
        ring.publish()
        #expect(ring.dequeue() == 1)
        #expect(ring.dequeue() == 2)
    }

    @Test("non-copyable elements are moved, never copied, and the ring destroys what is left in it")
    func noncopyableOwnership() {
        let live = LiveCount()
        do {
            let ring = SPSCRing<Token>(capacity: 8)
            var accepted = 0
            for i in 0..<6 {
                if ring.enqueue(Token(i, live)) == nil { accepted += 1 }
            }
            #expect(accepted == 6)
            #expect(live.load() == 6)
            var seen: [Int] = []
            _ = ring.dequeueBatch(maxCount: 2) { t in seen.append(t.id) }
            #expect(seen == [0, 1])
            #expect(live.load() == 4)
            if let t = ring.dequeue() { #expect(t.id == 2) }
            #expect(live.load() == 3)
        }
        #expect(live.load() == 0)  // three left in the ring were destroyed with it
    }

    @Test("two threads: every item arrives once and in order (run under TSan too)",
          arguments: [(1, 1), (64, 64), (17, 5)])
    func twoThreads(batches: (producer: Int, consumer: Int)) async {
        let ring = SPSCRing<UInt64>(capacity: 256)
        let total: UInt64 = 400_000
        let deadline = Deadline(seconds: 60)
        let producer = Thread {
            var next: UInt64 = 0
            while next < total && !deadline.passed {
                _ = ring.enqueueBatch(maxCount: batches.producer) {
                    guard next < total else { return nil }
                    defer { next += 1 }
                    return next
                }
            }
        }
        var expected: UInt64 = 0
        var outOfOrder = 0
        while expected < total && !deadline.passed {
            _ = ring.dequeueBatch(maxCount: batches.consumer) { v in
                if v != expected { outOfOrder += 1 }
                expected += 1
            }
        }
        producer.join()
        #expect(!deadline.passed, "the transfer did not finish within its time bound")
        #expect(expected == total)
        #expect(outOfOrder == 0)
        #expect(ring.dequeue() == nil)
    }
}

/// A non-copyable value that counts live instances.
struct Token: ~Copyable {
    let id: Int
    let live: LiveCount
    init(_ id: Int, _ live: LiveCount) {
        self.id = id
        self.live = live
        live.count.add(1, ordering: .relaxed)
    }
    deinit { live.count.subtract(1, ordering: .relaxed) }
}

final class LiveCount: Sendable {
    let count = Atomic<Int>(0)
    func load() -> Int { count.load(ordering: .relaxed) }
}

/// A wall-clock bound for loops in tests.
struct Deadline: Sendable {
    let end: UInt64
    init(seconds: UInt64) { end = Deadline.now() + seconds * 1_000_000_000 }
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
    var passed: Bool { Deadline.now() > end }
}

/// A joinable pthread (the test needs a real second thread, not a task).
final class Thread: @unchecked Sendable {
    private var thread = pthread_t()
    private final class Box { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }
    init(_ body: @escaping () -> Void) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        pthread_create(&thread, nil, { arg in
            Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().body()
            return nil
        }, box)
    }
    func join() { pthread_join(thread, nil) }
}
