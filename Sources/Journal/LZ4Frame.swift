import CLZ4

/// liblz4's frame format with block checksums and the content checksum (xxHash32): what the journal writes for
/// each batch, and what the control plane sends agents (`Content-Encoding: x-lz4-frame`). A frame is
/// self-describing (`lz4 -d` reads a segment), and a flipped bit fails its checksum.
public enum LZ4Frame {
    /// Compresses `source` into one frame written into `out` after `prefix` bytes left for the caller (the batch
    /// envelope); `out` is reused from batch to batch. Returns the frame's length. `acceleration` is LZ4's (1 is its
    /// default); the frame API takes it as a negative level, -level + 1 (lz4frame.c).
    public static func compress(_ source: UnsafeRawBufferPointer, into out: inout [UInt8], prefix: Int,
                         acceleration: Int = 1) throws(JournalError) -> Int {
        var prefs = LZ4F_preferences_t()
        prefs.frameInfo.blockSizeID = LZ4F_max256KB
        prefs.frameInfo.blockMode = LZ4F_blockLinked
        prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled
        prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled
        prefs.frameInfo.contentSize = UInt64(source.count)
        prefs.compressionLevel = Int32(1 - max(1, min(acceleration, 64)))
        let bound = LZ4F_compressFrameBound(source.count, &prefs)
        if out.count < prefix + bound { out = [UInt8](repeating: 0, count: prefix + bound) }
        let n = out.withUnsafeMutableBytes { dst in
            LZ4F_compressFrame(dst.baseAddress! + prefix, bound, source.baseAddress, source.count, &prefs)
        }
        if LZ4F_isError(n) != 0 {
            throw JournalError(.compression, "LZ4 compression failed: \(String(cString: LZ4F_getErrorName(n)))")
        }
        return n
    }

    /// `bytes` as one frame.
    public static func compress(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        let n = bytes.withUnsafeBytes { src in
            do throws(JournalError) {
                return try compress(src, into: &out, prefix: 0)
            } catch {
                // Only bad parameters make the frame API fail when the output holds its bound.
                preconditionFailure(error.message)
            }
        }
        out.removeSubrange(n...)
        return out
    }
}

/// Decompresses LZ4 frames, checking every checksum; reused across frames.
public final class LZ4FrameDecoder {
    private var context: OpaquePointer?

    public init() {
        var ctx: OpaquePointer?
        let r = LZ4F_createDecompressionContext(&ctx, UInt32(LZ4F_VERSION))
        precondition(LZ4F_isError(r) == 0 && ctx != nil, "LZ4F_createDecompressionContext failed")
        context = ctx
    }

    deinit { LZ4F_freeDecompressionContext(context) }

    /// The content of the frame in `frame` (exactly one frame), which must be `expectedLength` bytes (the journal's
    /// envelopes say how long); why not when it is damaged.
    func decompress(_ frame: UnsafeRawBufferPointer, expectedLength: Int) -> Result<[UInt8], FrameDamage> {
        decompress(frame, limit: expectedLength, expectedLength: expectedLength)
    }

    /// The content of the frame in `frame` (exactly one frame, of unknown length), at most `limit` bytes; why not
    /// when it is damaged, cut, followed by other bytes, or larger.
    public func decompress(_ frame: UnsafeRawBufferPointer, limit: Int) -> Result<[UInt8], FrameDamage> {
        decompress(frame, limit: limit, expectedLength: nil)
    }

    private func decompress(_ frame: UnsafeRawBufferPointer, limit: Int,
                            expectedLength: Int?) -> Result<[UInt8], FrameDamage> {
        LZ4F_resetDecompressionContext(context)
        // One byte of room past the limit: a frame holding more is caught. Of unknown length, the output grows.
        var out = [UInt8](repeating: 0, count: expectedLength.map { $0 + 1 } ?? min(limit + 1, 64 << 10))
        var consumed = 0
        var produced = 0
        func mismatch() -> FrameDamage {
            FrameDamage(.lengthMismatch, "frame holds \(produced) bytes in \(consumed) of \(frame.count); expected \(limit)")
        }
        while true {
            if produced == out.count { out += repeatElement(0, count: min(out.count, limit + 1 - out.count)) }
            var srcSize = frame.count - consumed
            var dstSize = out.count - produced
            let hint = out.withUnsafeMutableBytes { dst in
                LZ4F_decompress(context, dst.baseAddress! + produced, &dstSize, frame.baseAddress.map { $0 + consumed },
                                &srcSize, nil)
            }
            if LZ4F_isError(hint) != 0 {
                return .failure(FrameDamage(.invalid, String(cString: LZ4F_getErrorName(hint))))
            }
            consumed += srcSize
            produced += dstSize
            if expectedLength == nil && produced > limit {
                return .failure(FrameDamage(.tooLarge, "the content exceeds \(limit) bytes"))
            }
            if hint == 0 {
                // The frame ended and its checksums matched.
                if let expectedLength {
                    guard consumed == frame.count, produced == expectedLength else { return .failure(mismatch()) }
                } else if consumed != frame.count {
                    return .failure(FrameDamage(.trailingBytes, "bytes after the end of the frame"))
                }
                out.removeSubrange(produced...)
                return .success(out)
            }
            if srcSize == 0 && dstSize == 0 {
                return .failure(FrameDamage(.truncated, consumed >= frame.count ? "frame cut short" : "decoder made no progress"))
            }
            if produced > limit {
                return .failure(FrameDamage(.tooLarge, "frame holds more than the \(limit) bytes its envelope says"))
            }
        }
    }
}

/// Why a frame could not be read.
public struct FrameDamage: Error, Sendable {
    public enum Kind: Sendable { case invalid, truncated, tooLarge, trailingBytes, lengthMismatch }
    public let kind: Kind
    public let reason: String

    init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }
}
