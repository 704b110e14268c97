import Decode

/// One captured frame, owned by exactly one pipeline stage at a time.
///
/// A `Frame` names a slot of a `FramePool`: a slot of its own arena (capture files) or a frame of an AF_XDP UMEM
/// that the kernel wrote into. The bytes stay where they were written and only this token travels between threads. It cannot be copied; it must end in
/// `FramePool.release(_:)`, which consumes it. Dropping one anywhere else is a bug caught in debug builds.
public struct Frame: ~Copyable, Sendable {
    /// Slot index in the pool.
    public let slot: UInt32
    /// Where the bytes start inside the slot (AF_XDP: the kernel's headroom; capture files: 0).
    public let offset: UInt16
    /// Captured length in bytes.
    public let length: UInt32
    /// Length on the wire (larger than `length` when the capture's snap length cut it).
    public let originalLength: UInt32
    /// Capture time, nanoseconds since the Unix epoch.
    public let timestampNanoseconds: UInt64
    /// How to decode the bytes.
    public let linkType: LinkType

    @usableFromInline
    init(slot: UInt32, offset: UInt16 = 0, length: UInt32, originalLength: UInt32, timestampNanoseconds: UInt64,
         linkType: LinkType)
    {
        self.slot = slot
        self.offset = offset
        self.length = length
        self.originalLength = originalLength
        self.timestampNanoseconds = timestampNanoseconds
        self.linkType = linkType
    }

    /// Ends the token's life without the leak check; only the pool calls this.
    @usableFromInline
    consuming func retire() -> UInt32 {
        let s = slot
        discard self
        return s
    }

    deinit {
        assertionFailure("frame in slot \(slot) was dropped without being released to its pool")
    }
}

/// A frame set aside by `FramePool.park`: a plain value so it can sit in collections; `FramePool.unpark` turns it
/// back into the owning token.
public struct ParkedFrame: Sendable, BitwiseCopyable {
    public let slot: UInt32
    public let offset: UInt16
    public let length: UInt32
    public let originalLength: UInt32
    public let timestampNanoseconds: UInt64
    public let linkType: LinkType
}
