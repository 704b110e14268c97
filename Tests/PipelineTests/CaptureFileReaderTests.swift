import Capture
import Decode
import Foundation
import PacketCraft
import Testing

/// What a reader yields for a whole file: every packet, then how it ended.
private struct Reading: Equatable {
    var packets: [[UInt8]] = []
    var originalLengths: [Int] = []
    var timestamps: [UInt64] = []
    var ending = ""
}

private func readAll(_ path: String, direct: Bool) throws -> (Reading, Bool) {
    let reader = try CaptureFileReader(path: path, direct: direct)
    var r = Reading()
    while true {
        switch reader.next() {
        case .packet(let bytes, let originalLength, let ts):
            r.packets.append(Array(bytes))
            r.originalLengths.append(originalLength)
            r.timestamps.append(ts)
        case .end:
            r.ending = "end"
            return (r, reader.readsDirectly)
        case .error(let message):
            r.ending = "error: " + message
            return (r, reader.readsDirectly)
        }
    }
}

/// A classic pcap (nanosecond magic, little-endian) of `count` packets of varied sizes, some large, more than two
/// read chunks long; and the offset of each record.
private func samplePcap(count: Int) throws -> ([UInt8], [Int]) {
    let file = TempFile(".pcap")
    let w = try PcapWriter(path: file.path, linkType: .ethernet)
    var seed: UInt64 = 0x9e37_79b9_7f4a_7c15
    func next() -> UInt64 {
        seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return seed >> 33
    }
    for i in 0..<count {
        let size = i % 97 == 5 ? 60_000 + Int(next() % 140_000) : 14 + Int(next() % 1500)
        let packet = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }
        try w.write(packet: packet, timestampNanoseconds: 1_700_000_000_000_000_000 + UInt64(i) * 1_234_567,
                    originalLength: i % 11 == 0 ? size + 100 : nil)
    }
    try w.close()
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file.path)))
    var offsets: [Int] = []
    var o = 24
    while o + 16 <= bytes.count {
        offsets.append(o)
        let caplen = Int(bytes[o + 8]) | Int(bytes[o + 9]) << 8 | Int(bytes[o + 10]) << 16 | Int(bytes[o + 11]) << 24
        o += 16 + caplen
    }
    return (bytes, offsets)
}

private func put32(_ b: inout [UInt8], _ at: Int, _ v: UInt32, bigEndian: Bool = false) {
    for k in 0..<4 { b[at + k] = UInt8(truncatingIfNeeded: bigEndian ? v >> (24 - 8 * UInt32(k)) : v >> (8 * UInt32(k))) }
}

private func get32(_ b: [UInt8], _ at: Int) -> UInt32 {
    (0..<4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) }
}

/// The same file written in big-endian byte order.
private func byteSwapped(_ b: [UInt8], _ offsets: [Int]) -> [UInt8] {
    var out = b
    for field in [0, 8, 12, 16, 20] { put32(&out, field, get32(b, field), bigEndian: true) }
    out[4] = 0; out[5] = 2; out[6] = 0; out[7] = 4
    for o in offsets { for f in 0..<4 { put32(&out, o + 4 * f, get32(b, o + 4 * f), bigEndian: true) } }
    return out
}

@Suite("Capture file reading without libpcap per packet")
struct CaptureFileReaderTests {
    @Test("classic pcap variants and damaged files: the direct reader yields exactly what libpcap yields")
    func sameAsLibpcap() throws {
        let (base, offsets) = try samplePcap(count: 3000)
        #expect(base.count > 2 * (1 << 20) + 262_144, "the file spans several read chunks")
        var variants: [(String, [UInt8], Bool)] = [("nanosecond", base, true), ("empty", Array(base[0..<24]), true)]
        var micro = base
        put32(&micro, 0, 0xa1b2_c3d4)
        variants.append(("microsecond", micro, true))
        variants.append(("big-endian", byteSwapped(base, offsets), true))
        variants.append(("big-endian microsecond", byteSwapped(micro, offsets), true))
        for snap: UInt32 in [0, 100, 1000, 70_000, 300_000] {
            var b = base
            put32(&b, 16, snap)
            variants.append(("snaplen \(snap)", b, true))
            // Cut inside a record longer than the snapshot length: before and after the snapshot length.
            let long = offsets.first { get32(base, $0 + 8) > 2000 }!
            variants.append(("snaplen \(snap) cut early", Array(b[0..<long + 16 + 50]), true))
            variants.append(("snaplen \(snap) cut late", Array(b[0..<long + 16 + 1500]), true))
        }
        for cut in [offsets[7] + 3, offsets[7] + 15, offsets[7] + 16, offsets[7] + 20, base.count - 1, offsets[2000] + 9] {
            variants.append(("cut at \(cut)", Array(base[0..<cut]), true))
        }
        var huge = base
        put32(&huge, offsets[9] + 8, 300_000)
        variants.append(("caplen beyond 256 KiB", huge, true))
        var hugeSnap = huge
        put32(&hugeSnap, 16, 500_000)
        variants.append(("caplen beyond 256 KiB under the snaplen", hugeSnap, true))
        var negative = base
        put32(&negative, offsets[1], 0x9000_0000)
        put32(&negative, offsets[2] + 4, 0xffff_fff0)
        put32(&negative, offsets[3] + 4, 0x7fff_ffff)
        variants.append(("negative and overlarge time fields", negative, true))
        var negativeMicro = negative
        put32(&negativeMicro, 0, 0xa1b2_c3d4)
        variants.append(("negative and overlarge time fields, microseconds", negativeMicro, true))
        var old = base
        old[6] = 2
        variants.append(("version 2.2 (libpcap reads it)", old, false))

        for (name, bytes, direct) in variants {
            let file = TempFile(".pcap")
            try Data(bytes).write(to: URL(fileURLWithPath: file.path))
            let (viaLibpcap, _) = try readAll(file.path, direct: false)
            let (viaDirect, usedDirect) = try readAll(file.path, direct: true)
            #expect(usedDirect == direct, "\(name): read directly")
            #expect(viaDirect.ending == viaLibpcap.ending, "\(name)")
            #expect(viaDirect.packets.count == viaLibpcap.packets.count, "\(name)")
            #expect(viaDirect == viaLibpcap, "\(name)")
        }
    }

    @Test("pcapng stays with libpcap")
    func pcapngUsesLibpcap() throws {
        let file = TempFile(".pcapng")
        _ = try writeSynthetic(file, packets: 200, pcapng: true)
        let (r, direct) = try readAll(file.path, direct: true)
        #expect(!direct)
        #expect(r.ending == "end" && r.packets.count >= 200)
    }
}
