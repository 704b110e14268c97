import Decode
#if canImport(Glibc)
import Glibc
#endif

/// A fixed arena of frame slots, like an AF_XDP UMEM: frames are written once into a slot and referenced by index
/// until released. Two size classes keep memory small: many regular slots (`frameSize`, default 2 KiB) and a few
/// jumbo slots for the rare large frame (`jumboSize`, default 256 KiB, e.g. loopback captures with TSO).
///
/// `take` and `release` belong to one thread (the source); `bytes(of:)` may be called by any thread that owns the
/// frame.
public final class FramePool: @unchecked Sendable {
    // @unchecked Sendable: the free lists are touched only by the owning (source) thread; slot memory is handed
    // over with the frame token through the rings, whose release/acquire pairs order the accesses.

    public let frameSize: Int
    public let frameCount: Int
    public let jumboSize: Int
    public let jumboCount: Int
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let jumboBase: Int
    private var freeRegular: [UInt32]
    private var freeJumbo: [UInt32]
    /// Whether `base` was allocated here (false: memory lent by the caller, e.g. a UMEM).
    private let ownsMemory: Bool
    /// UMEM pools: frames adopted from the kernel and not yet released (in the pipeline, or parked).
    public private(set) var framesOut = 0

    /// Creates a pool; sizes are rounded up to 64 bytes.
    public init(frameSize: Int = 2048, frameCount: Int, jumboSize: Int = 256 * 1024, jumboCount: Int = 8) {
        precondition(frameCount > 0 && frameSize >= 64 && jumboSize >= frameSize && jumboCount >= 0)
        self.frameSize = (frameSize + 63) & ~63
        self.frameCount = frameCount
        self.jumboSize = (jumboSize + 63) & ~63
        self.jumboCount = jumboCount
        self.jumboBase = self.frameSize * frameCount
        let bytes = jumboBase + self.jumboSize * jumboCount
        self.base = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
        freeRegular = (0..<UInt32(frameCount)).reversed().map { $0 }
        freeJumbo = (0..<UInt32(jumboCount)).reversed().map { UInt32(frameCount) + $0 }
        ownsMemory = true
    }

    /// A pool over memory the caller owns and keeps alive longer than the pool: an AF_XDP UMEM of `frameCount`
    /// frames of `frameSize` bytes (a power of two) at `base`. No jumbo slots. Every slot starts out *owned by the
    /// kernel* (not free): the capture thread hands slots to the fill ring, turns what the rx ring gives back into
    /// frames with `adopt`, and `release` puts them on the free list, from which `takeSlot` feeds the fill ring.
    public init(umem base: UnsafeMutableRawPointer, frameSize: Int, frameCount: Int) {
        precondition(frameCount > 0 && frameSize >= 2048 && frameSize & (frameSize - 1) == 0)
        self.frameSize = frameSize
        self.frameCount = frameCount
        self.jumboSize = frameSize
        self.jumboCount = 0
        self.jumboBase = frameSize * frameCount
        self.base = base
        freeRegular = []
        freeRegular.reserveCapacity(frameCount)
        freeJumbo = []
        ownsMemory = false
    }

    deinit { if ownsMemory { base.deallocate() } }

    /// Makes the token for a frame the kernel wrote: `address` is its byte offset in the UMEM (slot and headroom).
    public func adopt(address: UInt64, length: UInt32, timestampNanoseconds: UInt64, linkType: LinkType) -> Frame {
        let slot = UInt32(truncatingIfNeeded: address / UInt64(frameSize))
        let offset = UInt16(truncatingIfNeeded: address % UInt64(frameSize))
        framesOut &+= 1
        return Frame(slot: slot, offset: offset, length: length, originalLength: length,
                     timestampNanoseconds: timestampNanoseconds, linkType: linkType)
    }

    /// Takes a free slot for the kernel (the fill ring) without making a frame; nil when none is free.
    @inlinable
    public func takeSlot() -> UInt32? { popFreeRegular() }

    @usableFromInline func popFreeRegular() -> UInt32? { freeRegular.popLast() }

    /// Gives a slot back that `takeSlot` took but the kernel did not accept (the fill ring was full).
    public func returnSlot(_ slot: UInt32) { freeRegular.append(slot) }

    /// The byte offset of `slot` in the memory, as the fill ring wants it.
    @inlinable
    public func umemAddress(of slot: UInt32) -> UInt64 { UInt64(slot) &* UInt64(frameSize) }

    /// The largest frame the pool can hold.
    public var maximumFrameLength: Int { jumboCount > 0 ? jumboSize : frameSize }

    /// Every slot of the pool.
    public var totalSlots: Int { frameCount + jumboCount }

    /// Slots currently free (source thread only).
    public var freeCount: Int { freeRegular.count + freeJumbo.count }

    /// Whether a frame of `length` bytes could be taken right now.
    @inlinable public func canTake(length: Int) -> Bool { hasFreeSlot(forLength: length) }

    @usableFromInline func hasFreeSlot(forLength length: Int) -> Bool {
        length <= frameSize ? !freeRegular.isEmpty : (length <= jumboSize && !freeJumbo.isEmpty)
    }

    /// Takes a free slot for `length` bytes and lets `fill` write them; nil when no slot of that size is free.
    public func take(length: Int, originalLength: Int, timestampNanoseconds: UInt64, linkType: LinkType,
                     fill: (UnsafeMutableRawBufferPointer) -> Void) -> Frame?
    {
        let slot: UInt32
        if length <= frameSize {
            guard let s = freeRegular.popLast() else { return nil }
            slot = s
        } else if length <= jumboSize {
            guard let s = freeJumbo.popLast() else { return nil }
            slot = s
        } else {
            return nil
        }
        fill(UnsafeMutableRawBufferPointer(start: address(of: slot), count: length))
        return Frame(slot: slot, length: UInt32(length), originalLength: UInt32(originalLength),
                     timestampNanoseconds: timestampNanoseconds, linkType: linkType)
    }

    /// Gives the frame's slot back (source thread only).
    public func release(_ frame: consuming Frame) {
        let slot = frame.retire()
        if !ownsMemory { framesOut &-= 1 }
        if Int(slot) < frameCount { freeRegular.append(slot) } else { freeJumbo.append(slot) }
    }

    /// Sets a frame aside in a copyable form, for a stage that must hold several frames in a collection (the source
    /// holding IP fragments until it knows which worker owns their datagram). Every parked frame must be unparked
    /// exactly once, by the same thread.
    public func park(_ frame: consuming Frame) -> ParkedFrame {
        let p = ParkedFrame(slot: frame.slot, offset: frame.offset, length: frame.length, originalLength: frame.originalLength,
                            timestampNanoseconds: frame.timestampNanoseconds, linkType: frame.linkType)
        _ = frame.retire()
        return p
    }

    /// Turns a parked frame back into its token.
    public func unpark(_ p: ParkedFrame) -> Frame {
        Frame(slot: p.slot, offset: p.offset, length: p.length, originalLength: p.originalLength,
              timestampNanoseconds: p.timestampNanoseconds, linkType: p.linkType)
    }

    /// Retires a frame that could not be returned through the normal path (a sizing bug): it is lost to the pool,
    /// which is better than corrupting the free lists from a second thread.
    public func releaseLeaked(_ frame: consuming Frame) {
        _ = frame.retire()
    }

    @inlinable func address(of slot: UInt32) -> UnsafeMutableRawPointer {
        let s = Int(slot)
        return s < frameCount ? base + s &* frameSize : base + jumboBase + (s - frameCount) &* jumboSize
    }

    /// The frame's bytes, valid while the caller owns the frame.
    @inlinable public func bytes(of frame: borrowing Frame) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: address(of: frame.slot) + Int(frame.offset), count: Int(frame.length))
    }
}
