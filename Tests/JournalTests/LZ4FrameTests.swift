import Testing
@testable import Journal

/// The one LZ4 frame codec: the journal's batches (length known from the envelope) and the control plane's
/// transfer bodies (length unknown, bounded).
@Suite("LZ4 frames")
struct LZ4FrameTests {
    static let content: [UInt8] = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31 >> 7) }

    func decode(_ frame: [UInt8], limit: Int) -> Result<[UInt8], FrameDamage> {
        frame.withUnsafeBytes { LZ4FrameDecoder().decompress($0, limit: limit) }
    }

    @Test("a frame of unknown length comes back whole, however large its output grows")
    func roundTrip() throws {
        let frame = LZ4Frame.compress(Self.content)
        #expect(frame.count < Self.content.count)
        #expect(try decode(frame, limit: Self.content.count).get() == Self.content)
        #expect(try decode(LZ4Frame.compress([]), limit: 0).get() == [])
    }

    @Test("damage is told apart: larger than the limit, cut, bytes after it, a flipped bit")
    func damage() {
        let frame = LZ4Frame.compress(Self.content)
        func kind(_ r: Result<[UInt8], FrameDamage>) -> FrameDamage.Kind? {
            if case .failure(let d) = r { return d.kind }
            return nil
        }
        #expect(kind(decode(frame, limit: Self.content.count - 1)) == .tooLarge)
        #expect(kind(decode(Array(frame.prefix(frame.count - 5)), limit: 1 << 20)) == .truncated)
        #expect(kind(decode(frame + [0], limit: 1 << 20)) == .trailingBytes)
        var flipped = frame
        flipped[flipped.count / 2] ^= 0x55
        #expect(kind(decode(flipped, limit: 1 << 20)) == .invalid)
        #expect(kind(decode([], limit: 1 << 20)) == .truncated)
    }

    @Test("with the envelope's length, a frame holding another length is refused")
    func expectedLength() throws {
        let frame = LZ4Frame.compress(Self.content)
        let d = LZ4FrameDecoder()
        #expect(try frame.withUnsafeBytes { d.decompress($0, expectedLength: Self.content.count) }.get() == Self.content)
        let short = frame.withUnsafeBytes { d.decompress($0, expectedLength: Self.content.count + 1) }
        guard case .failure(let damage) = short else { Issue.record("a longer expected length was accepted"); return }
        #expect(damage.kind == .lengthMismatch)
    }
}
