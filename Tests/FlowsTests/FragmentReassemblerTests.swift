import Decode
import PacketCraft
import Testing
@testable import Flows

/// Decodes each fragment frame and feeds it to `r`; returns the reassembled payload (as bytes) if one completed.
func feed(_ frames: [[UInt8]], to r: FragmentReassembler, now: UInt64 = 1) -> (payload: [UInt8]?, results: [String]) {
    var out: [UInt8]? = nil
    var results: [String] = []
    for f in frames {
        var p = DecodedPacket()
        f.withUnsafeBytes { raw in
            guard PacketDecoder.decode(raw, linkType: .ethernet, into: &p) == .fragment else {
                results.append("not a fragment")
                return
            }
            let info = p.fragment
            switch r.add(info, bytes: raw, packet: p, now: now) {
            case .incomplete: results.append("incomplete")
            case .refused(let e, let pending): results.append("refused \(e.name)\(pending ? " (datagram pending)" : "")")
            case .complete(let d, let proto):
                results.append("complete \(proto)")
                out = Array(d)
                var q = p
                if case .complete = PacketDecoder.resume(datagram: d, ipProtocol: proto, into: &q) {} else {
                    results.append("resume failed")
                }
            }
        }
    }
    return (out, results)
}

@Suite("IP fragment reassembly")
struct FragmentReassemblerTests {
    let src = IPAddress("10.45.1.1")!, dst = IPAddress("198.51.100.1")!
    let src6 = IPAddress("2001:db8::1")!, dst6 = IPAddress("2001:db8::2")!
    var payload: [UInt8] { (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7) } }
    var inner: [Layer] { [.udp(src: 4000, dst: 5000), .payload(payload)] }

    @Test("IPv4 fragments in order, reversed and shuffled reassemble to the original datagram",
          arguments: ["in order", "reversed", "shuffled"])
    func ipv4Orders(order: String) {
        var frames = PacketBuilder.ipv4Fragments(inner, src: src, dst: dst, id: 77, fragmentSize: 1000)
        #expect(frames.count == 4)
        if order == "reversed" { frames.reverse() }
        if order == "shuffled" { frames = [frames[2], frames[0], frames[3], frames[1]] }
        let r = FragmentReassembler()
        let (out, results) = feed(frames, to: r)
        #expect(results == ["incomplete", "incomplete", "incomplete", "complete 17"])
        #expect(out == PacketBuilder.datagram(inner, src: src, dst: dst))
        #expect(r.pendingDatagrams == 0)
        #expect(r.stats.datagramsCompleted == 1)
    }

    @Test("IPv6 fragments reassemble")
    func ipv6() {
        let frames = PacketBuilder.ipv6Fragments(inner, src: src6, dst: dst6, id: 0xabcdef, fragmentSize: 1232)
        let r = FragmentReassembler()
        let (out, results) = feed(frames.reversed(), to: r)
        #expect(results.last == "complete 17")
        #expect(out == PacketBuilder.datagram(inner, src: src6, dst: dst6))
    }

    @Test("duplicates and consistent overlaps are absorbed; the first copy wins")
    func duplicatesAndOverlaps() {
        let frames = PacketBuilder.ipv4Fragments(inner, src: src, dst: dst, id: 9, fragmentSize: 1000, overlap: 200)
        let r = FragmentReassembler()
        let (out, results) = feed([frames[0], frames[0]] + frames.dropFirst(), to: r)
        #expect(results.last == "complete 17")
        #expect(out == PacketBuilder.datagram(inner, src: src, dst: dst))
        #expect(r.stats.overlapConflicts == 0)
    }

    @Test("an overlap with different bytes is counted and the first copy is kept")
    func conflictingOverlap() {
        let data = PacketBuilder.datagram(inner, src: src, dst: dst)
        let first = PacketBuilder.ipv4FragmentPacket(Array(data[0..<1600]), offset: 0, more: true, ipProtocol: 17,
                                                     src: src, dst: dst, id: 5)
        var forged = Array(data[800..<data.count])
        forged[0] ^= 0xff
        let second = PacketBuilder.ipv4FragmentPacket(forged, offset: 800, more: false, ipProtocol: 17,
                                                      src: src, dst: dst, id: 5)
        let r = FragmentReassembler()
        let (out, _) = feed([first, second], to: r)
        #expect(out == data)
        #expect(r.stats.overlapConflicts == 1)
    }

    @Test("datagrams that never complete time out and are counted")
    func timeout() {
        let frames = PacketBuilder.ipv4Fragments(inner, src: src, dst: dst, id: 1, fragmentSize: 1000)
        let r = FragmentReassembler(timeoutNanoseconds: 100)
        _ = feed([frames[0]], to: r, now: 10)
        #expect(r.pendingDatagrams == 1)
        #expect(r.expire(now: 500) == 1)
        #expect(r.pendingDatagrams == 0)
        #expect(r.stats.datagramsTimedOut == 1)
        // The late rest does not complete anything.
        let (out, _) = feed(Array(frames.dropFirst()), to: r, now: 600)
        #expect(out == nil)
    }

    @Test("the memory budget evicts the oldest incomplete datagram")
    func budget() {
        let r = FragmentReassembler(memoryBudget: 2 * FragmentReassembler.maximumDatagram)
        for id in UInt16(1)...3 {
            let frames = PacketBuilder.ipv4Fragments(inner, src: src, dst: dst, id: id, fragmentSize: 1000)
            _ = feed([frames[0]], to: r)
        }
        #expect(r.pendingDatagrams == 2)
        #expect(r.stats.datagramsDroppedForBudget == 1)
        #expect(r.bytesHeld <= r.memoryBudget)
    }

    @Test("a refused fragment leaves the rest of its datagram pending, which still completes")
    func refusedKeepsDatagram() {
        let frames = PacketBuilder.ipv4Fragments(inner, src: src, dst: dst, id: 11, fragmentSize: 1000)
        let bogus = PacketBuilder.ipv4FragmentPacket([UInt8](repeating: 0, count: 64), offset: 65528, more: false,
                                                     ipProtocol: 17, src: src, dst: dst, id: 11)
        let r = FragmentReassembler()
        let (out, results) = feed([frames[0], bogus] + frames.dropFirst(), to: r)
        #expect(results == ["incomplete", "refused fragment_too_large (datagram pending)", "incomplete", "incomplete",
                            "complete 17"])
        #expect(out == PacketBuilder.datagram(inner, src: src, dst: dst))
    }

    @Test("a last fragment ending before data already stored refuses the datagram at once")
    func lastBeforeStoredData() {
        let data = PacketBuilder.datagram(inner, src: src, dst: dst)
        let late = PacketBuilder.ipv4FragmentPacket(Array(data[2000..<2400]), offset: 2000, more: true,
                                                    ipProtocol: 17, src: src, dst: dst, id: 12)
        let short = PacketBuilder.ipv4FragmentPacket(Array(data[8..<800]), offset: 8, more: false,
                                                     ipProtocol: 17, src: src, dst: dst, id: 12)
        let r = FragmentReassembler()
        let (_, results) = feed([late, short], to: r)
        #expect(results == ["incomplete", "refused fragment_overlap_conflict"])
        #expect(r.pendingDatagrams == 0)
    }

    @Test("expiry and budget eviction follow creation order, also when a key is reused")
    func orderWithReusedKey() {
        let r = FragmentReassembler(memoryBudget: 2 * FragmentReassembler.maximumDatagram, timeoutNanoseconds: 100)
        let a = PacketBuilder.ipv4Fragments(inner, src: src, dst: dst, id: 1, fragmentSize: 1000)
        let b = PacketBuilder.ipv4Fragments(inner, src: src, dst: dst, id: 2, fragmentSize: 1000)
        _ = feed([a[0]], to: r, now: 0)       // datagram 1 at t=0
        _ = feed(Array(a.dropFirst()), to: r, now: 10)  // completes: key 1 no longer pending
        _ = feed([b[0]], to: r, now: 20)      // datagram 2 at t=20
        _ = feed([a[0]], to: r, now: 30)      // key 1 again, a new datagram at t=30
        // At t=125 only datagram 2 is older than 100: the stale entry of the first key 1 must not expire the new one.
        #expect(r.expire(now: 125) == 1)
        #expect(r.pendingDatagrams == 1)
        #expect(r.expire(now: 135) == 1)
        #expect(r.pendingDatagrams == 0)
    }

    @Test("a fragment past 65535 bytes is refused")
    func tooLarge() {
        let f = PacketBuilder.ipv4FragmentPacket([UInt8](repeating: 0, count: 64), offset: 65528, more: false,
                                                 ipProtocol: 17, src: src, dst: dst, id: 3)
        let (_, results) = feed([f], to: FragmentReassembler())
        #expect(results == ["refused fragment_too_large"])
    }

    @Test("a non-final fragment whose length is not a multiple of 8 is refused")
    func badLength() {
        let f = PacketBuilder.ipv4FragmentPacket([UInt8](repeating: 0, count: 13), offset: 0, more: true,
                                                 ipProtocol: 17, src: src, dst: dst, id: 3)
        let (_, results) = feed([f], to: FragmentReassembler())
        #expect(results == ["refused fragment_bad_offset"])
    }
}
