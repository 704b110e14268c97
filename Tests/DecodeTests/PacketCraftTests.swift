#if canImport(Glibc)
import Capture
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Decode
import PacketCraft
import Testing

/// Reads a whole file (test helper, no Foundation).
func readFile(_ path: String) -> [UInt8] {
    guard let fp = fopen(path, "rb") else { return [] }
    defer { fclose(fp) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, fp) }
        if n <= 0 { break }
        out += chunk[0..<n]
    }
    return out
}

/// A fresh path under the temporary directory.
func temporaryPath(_ name: String) -> String {
    "/tmp/statetap-decodetests-\(getpid())-\(name)"
}

func le32(_ b: [UInt8], _ o: Int) -> UInt32 {
    UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
}

func le16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }

/// One's-complement sum verification: a correct checksum makes the folded sum 0xffff.
func checksumVerifies(_ bytes: [UInt8]) -> Bool { PacketBuilder.internetChecksum(bytes) == 0 }

func pseudoHeader(_ src: IPAddress, _ dst: IPAddress, _ proto: UInt8, _ length: Int) -> [UInt8] {
    if src.isIPv6 {
        return src.bytes + dst.bytes + [0, 0, UInt8(length >> 8), UInt8(length & 0xff), 0, 0, 0, proto]
    }
    return src.bytes + dst.bytes + [0, proto, UInt8(length >> 8), UInt8(length & 0xff)]
}

@Suite("PacketCraft")
struct PacketCraftTests {
    @Test("IPv4 header, TCP and UDP checksums verify")
    func checksums() {
        let (tcp, o) = PacketBuilder.buildWithOffsets([eth0, .ipv4(src: a4, dst: b4, options: [1, 1, 1]), tcpSeg, pl])
        #expect(checksumVerifies(Array(tcp[o[1]..<o[2]])))
        #expect(checksumVerifies(pseudoHeader(a4, b4, 6, tcp.count - o[2]) + tcp[o[2]...]))
        let (udp, u) = PacketBuilder.buildWithOffsets([eth0, ip6, .ipv6Extension(type: 60, body: []), udpDgram, pl])
        #expect(checksumVerifies(pseudoHeader(a6, b6, 17, udp.count - u[3]) + udp[u[3]...]))
        #expect(udp.peekUInt16(at: u[3] + 6) != 0)
        let (icmp6, i) = PacketBuilder.buildWithOffsets([eth0, ip6, .icmp(type: 128, body: [1, 2, 3])])
        #expect(checksumVerifies(pseudoHeader(a6, b6, 58, icmp6.count - i[2]) + icmp6[i[2]...]))
        let (icmp4, j) = PacketBuilder.buildWithOffsets([eth0, ip4, .icmp(type: 8, body: [1, 2, 3])])
        #expect(checksumVerifies(Array(icmp4[j[2]...])))
        let (gre, g) = PacketBuilder.buildWithOffsets([eth0, outer4, .gre(key: 3, checksum: true), ip4, udpDgram])
        #expect(checksumVerifies(Array(gre[g[2]...])))
        var poked = tcp
        poked[o[1] + 8] = 1
        #expect(!checksumVerifies(Array(poked[o[1]..<o[2]])))
        PacketBuilder.fixIPv4HeaderChecksum(&poked, at: o[1])
        #expect(checksumVerifies(Array(poked[o[1]..<o[2]])))
    }

    @Test("length and next-protocol fields follow the inner layers")
    func lengths() {
        let layers: [Layer] = [eth0, .vlan(id: 1, tpid: 0x88a8), .vlan(id: 2), .mpls(label: 5), .mpls(label: 6),
                               ip4, gtpuUDP, .gtpu(teid: 1, sequence: 2), ip6, udpDgram, pl]
        let (b, o) = PacketBuilder.buildWithOffsets(layers)
        #expect(o == [0, 14, 18, 22, 26, 30, 50, 58, 70, 110, 118])
        #expect(b.peekUInt16(at: 12) == 0x88a8 && b.peekUInt16(at: 16) == 0x8100 && b.peekUInt16(at: 20) == 0x8847)
        #expect(b[o[3] + 2] & 1 == 0 && b[o[4] + 2] & 1 == 1)  // bottom of stack on the last label only
        #expect(b.peekUInt16(at: o[5] + 2) == UInt16(b.count - o[5]) && b[o[5] + 9] == 17)
        #expect(b.peekUInt16(at: o[6] + 4) == UInt16(b.count - o[6]))
        #expect(b[o[7]] == 0x32 && b.peekUInt16(at: o[7] + 2) == UInt16(b.count - o[7] - 8))
        #expect(b.peekUInt16(at: o[8] + 4) == UInt16(b.count - o[8] - 40) && b[o[8] + 6] == 17)
        #expect(PacketBuilder.layerOffsets(layers) == o)
        let pppoe = PacketBuilder.build([eth0, .pppoeSession(id: 7), ip6, udpDgram])
        #expect(pppoe.peekUInt16(at: 12) == 0x8864 && pppoe.peekUInt16(at: 18) == UInt16(pppoe.count - 20))
        #expect(pppoe.peekUInt16(at: 20) == 0x0057)
        let frag = PacketBuilder.build([eth0, .ipv4(src: a4, dst: b4, dontFragment: true, moreFragments: true,
                                                    fragmentOffset: 1480), pl])
        #expect(frag.peekUInt16(at: 20) == 0x4000 | 0x2000 | 185)
        let gtpExt = PacketBuilder.build([.gtpu(teid: 1, extensions: [.pduSessionContainer(qfi: 9),
                                                                      GTPUExtension(type: 0x81, content: [1, 2, 3])])])
        #expect(gtpExt == [0x34, 0xff, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0x85, 1, 0, 9, 0x81, 2, 1, 2, 3, 0, 0, 0, 0])
    }

    @Test("fragments cover the datagram")
    func fragments() {
        let data = [UInt8](0..<100)
        let pieces = PacketBuilder.fragmentPieces(data, fragmentSize: 32)
        #expect(pieces.map(\.offset) == [0, 32, 64, 96] && pieces.map(\.more) == [true, true, true, false])
        #expect(pieces.flatMap(\.data) == data)
        let overlapping = PacketBuilder.fragmentPieces(data, fragmentSize: 32, overlap: 8)
        #expect(overlapping.map(\.offset) == [0, 24, 48, 72] && overlapping.last!.data.count == 28)
        #expect(PacketBuilder.fragmentPieces(Array(data.prefix(64)), fragmentSize: 32).count == 2)
    }

    @Test("MAC parse and format")
    func mac() {
        #expect(MAC("00:1B:21:0a:ff:01")?.description == "00:1b:21:0a:ff:01")
        #expect(MAC("00-1b-21-0a-ff-01") == MAC(0x00, 0x1b, 0x21, 0x0a, 0xff, 0x01))
        #expect(MAC(0x001b_210a_ff01).bytes == [0x00, 0x1b, 0x21, 0x0a, 0xff, 0x01])
        #expect(MAC("00:1b:21:0a:ff") == nil && MAC("00:1b:21:0a:ff:1") == nil && MAC("zz:1b:21:0a:ff:01") == nil)
        #expect(MAC.broadcast.description == "ff:ff:ff:ff:ff:ff")
    }

    @Test("cooked capture headers")
    func cooked() {
        let sll = PacketBuilder.sllHeader(protocol: 0x86dd)
        let sll2 = PacketBuilder.sll2Header(protocol: 0x86dd, interfaceIndex: 3)
        #expect(sll.count == 16 && sll.peekUInt16(at: 14) == 0x86dd && sll.peekUInt16(at: 4) == 6)
        #expect(sll2.count == 20 && sll2.peekUInt16(at: 0) == 0x86dd && sll2[7] == 3 && sll2[11] == 6)
    }

    @Test("pcap writer: header, records, snap length")
    func pcap() throws {
        let path = temporaryPath("w.pcap")
        defer { unlink(path) }
        let frame = PacketBuilder.build([eth0, ip4, udpDgram, pl])
        let writer = try PcapWriter(path: path, linkType: .linuxSLL2, snaplen: 50)
        try writer.write(packet: frame, timestampNanoseconds: 1_700_000_000_123_456_789)
        try writer.write(packet: [1, 2, 3], timestampNanoseconds: 5, originalLength: 1500)
        try writer.close()
        #expect(throws: CaptureWriterError.self) { try writer.write(packet: [1], timestampNanoseconds: 0) }
        let b = readFile(path)
        #expect(b.count == 24 + 16 + 50 + 16 + 3)
        #expect(le32(b, 0) == 0xa1b2_3c4d && le16(b, 4) == 2 && le16(b, 6) == 4)
        #expect(le32(b, 16) == 50 && le32(b, 20) == 276)
        #expect(le32(b, 24) == 1_700_000_000 && le32(b, 28) == 123_456_789)
        #expect(le32(b, 32) == 50 && le32(b, 36) == UInt32(frame.count))
        #expect(Array(b[40..<90]) == Array(frame.prefix(50)))
        #expect(le32(b, 90) == 0 && le32(b, 94) == 5 && le32(b, 98) == 3 && le32(b, 102) == 1500)
        #expect(Array(b[106...]) == [1, 2, 3])
    }

    @Test("pcapng writer: blocks and nanosecond resolution")
    func pcapng() throws {
        let path = temporaryPath("w.pcapng")
        defer { unlink(path) }
        let writer = try PcapNGWriter(path: path, linkType: .ethernet)
        try writer.write(packet: [9, 8, 7, 6, 5], timestampNanoseconds: 0x1_0000_0002)
        try writer.close()
        let b = readFile(path)
        #expect(b.count == 28 + 32 + 40)
        #expect(le32(b, 0) == 0x0a0d_0d0a && le32(b, 4) == 28 && le32(b, 8) == 0x1a2b_3c4d && le32(b, 24) == 28)
        #expect(le32(b, 28) == 1 && le32(b, 32) == 32 && le16(b, 36) == 1 && le16(b, 44) == 9 && le16(b, 46) == 1)
        #expect(b[48] == 9 && le32(b, 56) == 32)
        #expect(le32(b, 60) == 6 && le32(b, 64) == 40 && le32(b, 72) == 1 && le32(b, 76) == 2)
        #expect(le32(b, 80) == 5 && le32(b, 84) == 5 && Array(b[88..<96]) == [9, 8, 7, 6, 5, 0, 0, 0])
        #expect(le32(b, 96) == 40)
    }

    @Test("writers fail with errno text")
    func writerErrors() {
        do {
            _ = try PcapWriter(path: "/nonexistent-dir/x.pcap", linkType: .ethernet)
            Issue.record("opened a file in a missing directory")
        } catch let e as CaptureWriterError {
            #expect(e.code == ENOENT && e.operation == "open" && e.description.contains("No such file"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test("500k packets write quickly through the buffer")
    func bulk() throws {
        let path = temporaryPath("bulk.pcap")
        defer { unlink(path) }
        let frame = PacketBuilder.build([eth0, ip4, tcpSeg, pl])
        let clock = ContinuousClock()
        let elapsed = try clock.measure {
            let writer = try PcapWriter(path: path, linkType: .ethernet)
            for k in 0..<500_000 { try writer.write(packet: frame, timestampNanoseconds: UInt64(k) * 1000) }
            try writer.close()
        }
        var st = stat()
        #expect(stat(path, &st) == 0 && Int(st.st_size) == 24 + 500_000 * (16 + frame.count))
        #expect(elapsed < .seconds(10))
    }
}
