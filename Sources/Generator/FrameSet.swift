// The frames a run sends, copied once into one buffer whose addresses stay fixed: the AF_PACKET engine points the
// kernel at them (iovecs), the AF_XDP engine copies them into its UMEM, the live-frames engine hands them to
// BPF_PROG_RUN.
#if canImport(Glibc)
import Glibc
#endif

/// The distinct frames of a run, in file order, in memory that does not move.
public final class FrameSet {
    /// Number of distinct frames.
    public let count: Int
    /// Length of the longest frame.
    public let longest: Int
    @usableFromInline let bases: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    @usableFromInline let lengths: UnsafeMutablePointer<UInt32>
    private let storage: UnsafeMutableRawPointer

    public init(_ frames: [[UInt8]]) {
        precondition(!frames.isEmpty, "a run needs at least one frame")
        count = frames.count
        longest = frames.map(\.count).max() ?? 0
        let total = frames.reduce(0) { $0 + $1.count }
        storage = .allocate(byteCount: max(total, 1), alignment: 64)
        bases = .allocate(capacity: count)
        lengths = .allocate(capacity: count)
        var offset = 0
        for (i, f) in frames.enumerated() {
            let p = storage + offset
            f.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            bases[i] = p
            lengths[i] = UInt32(f.count)
            offset += f.count
        }
    }

    deinit {
        storage.deallocate()
        bases.deallocate()
        lengths.deallocate()
    }

    /// The bytes of frame `i`.
    @inlinable
    public func frame(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: bases[i], count: Int(lengths[i]))
    }
}

/// What a run sends: every frame `repeatCount` times in a row, the whole set `loops` times, in that order.
public struct SendPlan: Sendable {
    public var distinctFrames: Int
    public var repeatCount: UInt64
    public var loops: UInt64
    /// Exactly this many frames instead (`--count`): the sequence above, started again as often as needed and cut.
    public var count: UInt64?

    public init(distinctFrames: Int, repeatCount: UInt64, loops: UInt64, count: UInt64? = nil) {
        self.distinctFrames = distinctFrames
        self.repeatCount = repeatCount
        self.loops = loops
        self.count = count
    }

    /// Frames the run sends in all.
    public var total: UInt64 { count ?? UInt64(distinctFrames) * repeatCount * loops }

    /// The frame sent at position `sequence` (0..<total) of the run.
    @inlinable
    public func frameIndex(at sequence: UInt64) -> Int {
        let perLoop = UInt64(distinctFrames) * repeatCount
        return Int((sequence % perLoop) / repeatCount)
    }
}
