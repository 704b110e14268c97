import CLZ4

/// liblz4's frame format with block checksums and the content checksum (xxHash32): what the journal writes for
/// each batch. A frame is self-describing (`lz4 -d` reads a segment), and a flipped bit fails its checksum.
enum LZ4Frame {
    /// Compresses `source` into one frame written into `out` after `prefix` bytes left for the caller (the batch
    /// envelope); `out` is reused from batch to batch. Returns the frame's length. `acceleration` is LZ4's (1 is its
    /// default); the frame API takes it as a negative level, -level + 1 (lz4frame.c).
    static func compress(_ source: UnsafeRawBufferPointer, into out: inout [UInt8], prefix: Int,
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
}

/// Decompresses LZ4 frames, checking every checksum; reused across frames.
final class LZ4FrameDecoder {
    private var context: OpaquePointer?

    init() {
        var ctx: OpaquePointer?
        let r = LZ4F_createDecompressionContext(&ctx, UInt32(LZ4F_VERSION))
        precondition(LZ4F_isError(r) == 0 && ctx != nil, "LZ4F_createDecompressionContext failed")
        context = ctx
    }

    deinit { LZ4F_freeDecompressionContext(context) }

    /// The content of the frame in `frame` (exactly one frame), which must be `expectedLength` bytes; the reason
    /// as a string when it is damaged.
    func decompress(_ frame: UnsafeRawBufferPointer, expectedLength: Int) -> Result<[UInt8], FrameDamage> {
        LZ4F_resetDecompressionContext(context)
        // One byte of room past the expected length: a frame holding more than its envelope says is caught.
        var out = [UInt8](repeating: 0, count: expectedLength + 1)
        var consumed = 0
        var produced = 0
        while true {
            var srcSize = frame.count - consumed
            var dstSize = out.count - produced
            let hint = out.withUnsafeMutableBytes { dst in
                LZ4F_decompress(context, dst.baseAddress! + produced, &dstSize, frame.baseAddress! + consumed,
                                &srcSize, nil)
            }
            if LZ4F_isError(hint) != 0 {
                return .failure(FrameDamage(reason: String(cString: LZ4F_getErrorName(hint))))
            }
            consumed += srcSize
            produced += dstSize
            if hint == 0 {
                // The frame ended and its checksums matched.
                guard consumed == frame.count, produced == expectedLength else {
                    return .failure(FrameDamage(reason: "frame holds \(produced) bytes in \(consumed) of \(frame.count); expected \(expectedLength)"))
                }
                out.removeSubrange(produced...)
                return .success(out)
            }
            if srcSize == 0 && dstSize == 0 {
                return .failure(FrameDamage(reason: consumed >= frame.count ? "frame cut short" : "decoder made no progress"))
            }
            if produced > expectedLength {
                return .failure(FrameDamage(reason: "frame holds more than the \(expectedLength) bytes its envelope says"))
            }
        }
    }
}

/// Why a frame could not be read.
struct FrameDamage: Error {
    let reason: String
}
