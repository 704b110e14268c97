import Synchronization

/// A bounded, lock-free, single-producer/single-consumer ring.
///
/// One thread may call the producer methods (`enqueue`, `enqueueBatch`) and one other thread the consumer methods
/// (`dequeue`, `dequeueBatch`). The capacity is a power of two; indices are free-running `UInt32`s that wrap with
/// `&+`, so `head &- tail` is always the number of items in the ring. Each side keeps a cached copy of the other
/// side's index and reloads it only when the cache says the ring is full (producer) or empty (consumer), so a
/// batch costs one acquiring load and one releasing store, as in DPDK's `rte_ring` and the AF_XDP rings.
///
/// Elements may be non-copyable: a frame token moved into the ring is owned by the ring until the consumer moves it
/// out, so a frame can be neither dropped nor handed out twice.
public final class SPSCRing<Element: ~Copyable>: @unchecked Sendable {
    // @unchecked Sendable: the slots are shared between exactly two threads; the head/tail protocol below makes
    // every slot written by the producer visible to the consumer before it reads it, and vice versa for reuse.

    /// Number of slots (a power of two).
    public let capacity: Int
    @usableFromInline let mask: UInt32
    @usableFromInline let slots: UnsafeMutablePointer<Element>

    // Keeps the read-only fields above off the producer's line: the consumer reads `mask` and `slots` on every
    // dequeue, and would otherwise lose that line to each publish (false sharing).
    private let padRO: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)

    // Producer-owned line: the index the producer publishes and its cache of the consumer's index.
    @usableFromInline let head = Atomic<UInt32>(0)
    @usableFromInline var producerHead: UInt32 = 0
    @usableFromInline var cachedTail: UInt32 = 0
    private let pad0: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0)

    // Consumer-owned line.
    @usableFromInline let tail = Atomic<UInt32>(0)
    @usableFromInline var consumerTail: UInt32 = 0
    @usableFromInline var cachedHead: UInt32 = 0
    private let pad1: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0)

    /// Creates a ring. `capacity` must be a power of two between 2 and 2^30.
    public convenience init(capacity: Int) {
        self.init(capacity: capacity, startingIndex: 0)
    }

    /// Test-only: starts the free-running indices at `startingIndex`, so tests reach the UInt32 wrap quickly.
    init(capacity: Int, startingIndex: UInt32) {
        precondition(capacity >= 2 && capacity <= 1 << 30 && capacity & (capacity - 1) == 0,
                     "ring capacity must be a power of two in 2...2^30, got \(capacity)")
        self.capacity = capacity
        self.mask = UInt32(capacity - 1)
        self.slots = UnsafeMutablePointer<Element>.allocate(capacity: capacity)
        head.store(startingIndex, ordering: .relaxed)
        tail.store(startingIndex, ordering: .relaxed)
        producerHead = startingIndex
        cachedTail = startingIndex
        consumerTail = startingIndex
        cachedHead = startingIndex
    }

    deinit {
        // Destroy whatever is still in flight; both threads are gone by now.
        var t = tail.load(ordering: .acquiring)
        let h = head.load(ordering: .acquiring)
        while t != h {
            (slots + Int(t & mask)).deinitialize(count: 1)
            t &+= 1
        }
        slots.deallocate()
    }

    // MARK: Producer

    /// Free slots as seen by the producer, refreshing its cache of the consumer's index if needed.
    @inlinable @inline(__always)
    func freeSlots(wanting n: UInt32) -> UInt32 {
        var free = UInt32(capacity) &- (producerHead &- cachedTail)
        if free < n {
            // Pairs with the consumer's releasing store of `tail`: the consumer has finished moving out of every
            // slot before `tail`, so they may be overwritten.
            cachedTail = tail.load(ordering: .acquiring)
            free = UInt32(capacity) &- (producerHead &- cachedTail)
        }
        return free
    }

    /// Moves `element` into the ring. Returns it back when the ring is full.
    @inlinable
    public func enqueue(_ element: consuming Element) -> Element? {
        guard freeSlots(wanting: 1) > 0 else { return element }
        (slots + Int(producerHead & mask)).initialize(to: element)
        producerHead &+= 1
        // Pairs with the consumer's acquiring load of `head`: the slot's contents are visible before the index.
        head.store(producerHead, ordering: .releasing)
        return nil
    }

    /// Enqueues up to `maxCount` elements produced by `produce`, publishing them with a single store.
    /// `produce` is called until it returns nil, `maxCount` elements were produced, or the ring is full.
    /// Returns the number enqueued.
    @inlinable
    public func enqueueBatch(maxCount: Int, _ produce: () -> Element?) -> Int {
        let room = Int(freeSlots(wanting: UInt32(clamping: maxCount)))
        let n = min(room, maxCount)
        var i = 0
        while i < n {
            guard let e = produce() else { break }
            (slots + Int((producerHead &+ UInt32(i)) & mask)).initialize(to: e)
            i += 1
        }
        if i > 0 {
            producerHead &+= UInt32(i)
            // Pairs with the consumer's acquiring load of `head`.
            head.store(producerHead, ordering: .releasing)
        }
        return i
    }

    /// Moves `element` into the next slot without making it visible to the consumer yet (like
    /// `xsk_ring_prod__reserve`); `publish()` makes every such element visible at once. Returns the element back
    /// when the ring is full. Publish before waiting for room, or the consumer never sees the pending elements.
    @inlinable
    public func enqueueUnpublished(_ element: consuming Element) -> Element? {
        guard freeSlots(wanting: 1) > 0 else { return element }
        (slots + Int(producerHead & mask)).initialize(to: element)
        producerHead &+= 1
        return nil
    }

    /// Makes every element enqueued so far visible to the consumer (like `xsk_ring_prod__submit`).
    @inlinable
    public func publish() {
        // Pairs with the consumer's acquiring load of `head`.
        head.store(producerHead, ordering: .releasing)
    }

    /// Elements enqueued but not yet published (producer side only).
    @inlinable
    public var unpublishedCount: Int { Int(producerHead &- head.load(ordering: .relaxed)) }

    /// Free slots right now (producer side only).
    @inlinable
    public var producerFreeCount: Int { Int(freeSlots(wanting: UInt32(capacity))) }

    // MARK: Consumer

    /// Items available as seen by the consumer, refreshing its cache of the producer's index if needed.
    @inlinable @inline(__always)
    func available(wanting n: UInt32) -> UInt32 {
        var avail = cachedHead &- consumerTail
        if avail < n {
            // Pairs with the producer's releasing store of `head`: slots before it are fully initialized.
            cachedHead = head.load(ordering: .acquiring)
            avail = cachedHead &- consumerTail
        }
        return avail
    }

    /// Moves one element out of the ring, or returns nil when it is empty.
    @inlinable
    public func dequeue() -> Element? {
        guard available(wanting: 1) > 0 else { return nil }
        let e = (slots + Int(consumerTail & mask)).move()
        consumerTail &+= 1
        // Pairs with the producer's acquiring load of `tail`: the slot has been moved out and may be reused.
        tail.store(consumerTail, ordering: .releasing)
        return e
    }

    /// Moves up to `maxCount` elements out of the ring into `consume`, releasing their slots with a single store.
    /// Returns the number dequeued.
    @inlinable
    public func dequeueBatch(maxCount: Int, _ consume: (consuming Element) -> Void) -> Int {
        let n = min(Int(available(wanting: UInt32(clamping: maxCount))), maxCount)
        var i = 0
        while i < n {
            consume((slots + Int((consumerTail &+ UInt32(i)) & mask)).move())
            i += 1
        }
        if n > 0 {
            consumerTail &+= UInt32(n)
            // Pairs with the producer's acquiring load of `tail`.
            tail.store(consumerTail, ordering: .releasing)
        }
        return n
    }

    /// Items waiting right now (consumer side only).
    @inlinable
    public var consumerAvailableCount: Int { Int(available(wanting: UInt32(capacity))) }
}
