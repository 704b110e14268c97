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
    }

    deinit { base.deallocate() }

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
        if Int(slot) < frameCount { freeRegular.append(slot) } else { freeJumbo.append(slot) }
    }

    /// Sets a frame aside in a copyable form, for a stage that must hold several frames in a collection (the source
    /// holding IP fragments until it knows which worker owns their datagram). Every parked frame must be unparked
    /// exactly once, by the same thread.
    public func park(_ frame: consuming Frame) -> ParkedFrame {
        let p = ParkedFrame(slot: frame.slot, length: frame.length, originalLength: frame.originalLength,
                            timestampNanoseconds: frame.timestampNanoseconds, linkType: frame.linkType)
        _ = frame.retire()
        return p
    }

    /// Turns a parked frame back into its token.
    public func unpark(_ p: ParkedFrame) -> Frame {
        Frame(slot: p.slot, length: p.length, originalLength: p.originalLength,
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
        UnsafeRawBufferPointer(start: address(of: frame.slot), count: Int(frame.length))
    }
}
