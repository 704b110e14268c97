import Flows
import Testing

/// Feeds segments (seq, bytes) and returns what came out: data bytes, with each gap as that many 0xEE bytes and
/// each cut as that many 0xCC bytes.
private func run(_ r: inout StreamReassembler, _ segments: [(UInt32, [UInt8], Bool)], cuts: [Int] = []) -> [UInt8] {
    var out: [UInt8] = []
    for (i, (seq, bytes, syn)) in segments.enumerated() {
        bytes.withUnsafeBytes { raw in
            r.add(seq: seq, syn: syn, payload: raw, cut: i < cuts.count ? cuts[i] : 0) { e in
                switch e {
                case .data(let d): out += Array(d)
                case .gap(let n): out += [UInt8](repeating: 0xee, count: n)
                case .cut(let n): out += [UInt8](repeating: 0xcc, count: n)
                }
            }
        }
    }
    return out
}

@Suite("TCP stream reassembly")
struct StreamReassemblerTests {
    let text = Array("GET /a HTTP/1.1\r\nHost: example\r\n\r\n".utf8)

    @Test("in order, out of order, duplicated, overlapping: each byte once, in order")
    func orders() {
        let isn: UInt32 = 1000
        let parts = [(0, 5), (5, 12), (12, 20), (20, text.count)].map { (isn + 1 + UInt32($0.0), Array(text[$0.0..<$0.1]), false) }
        var a = StreamReassembler()
        #expect(run(&a, [(isn, [], true)] + parts) == text)
        var b = StreamReassembler()
        #expect(run(&b, [(isn, [], true), parts[2], parts[3], parts[1], parts[0]]) == text)
        var c = StreamReassembler()
        let overlap = (isn + 1 + 3, Array(text[3..<15]), false)
        #expect(run(&c, [(isn, [], true), parts[0], overlap, parts[0], parts[1], parts[2], parts[3], parts[3]]) == text)
        #expect(c.delivered == UInt64(text.count) && c.buffered == 0)
    }

    @Test("segments the snap length cut: their missing tails come out as cuts, in order, whatever the arrival order")
    func cuts() {
        let isn: UInt32 = 7000
        // Three segments of 10 bytes sent, each captured with 4 bytes (6 cut).
        let sent: [UInt8] = (0..<30).map { UInt8(65 + $0 % 26) }
        let six = [UInt8](repeating: 0xcc, count: 6)
        var captured: [(UInt32, [UInt8], Bool)] = []
        var expected: [UInt8] = []
        for k in 0..<3 {
            let part = Array(sent[(10 * k)..<(10 * k + 4)])
            captured.append((isn + 1 + UInt32(10 * k), part, false))
            expected += part + six
        }
        var inOrder = StreamReassembler()
        #expect(run(&inOrder, [(isn, [], true)] + captured, cuts: [0, 6, 6, 6]) == expected)
        #expect(inOrder.cutBytes == 18 && inOrder.gapBytes == 0 && inOrder.buffered == 0)
        var reversed = StreamReassembler()
        #expect(run(&reversed, [(isn, [], true), captured[2], captured[1], captured[0]], cuts: [0, 6, 6, 6]) == expected)
        #expect(reversed.cutBytes == 18 && reversed.gapBytes == 0 && reversed.buffered == 0)
        // A retransmission of a cut segment adds nothing; a segment never captured is a gap, not a cut.
        var lost = StreamReassembler()
        let out = run(&lost, [(isn, [], true), captured[0], captured[0], captured[2]], cuts: [0, 6, 6, 6])
        var finished: [UInt8] = []
        lost.finish { e in
            switch e {
            case .data(let d): finished += Array(d)
            case .gap(let n): finished += [UInt8](repeating: 0xee, count: n)
            case .cut(let n): finished += [UInt8](repeating: 0xcc, count: n)
            }
        }
        let lostSegment = [UInt8](repeating: 0xee, count: 10)
        var want = Array(sent[0..<4]) + six
        want += lostSegment + Array(sent[20..<24]) + six
        #expect(out + finished == want)
    }

    @Test("data in the SYN (TCP Fast Open), mid-stream pickup, and sequence wrap-around")
    func starts() {
        var tfo = StreamReassembler()
        #expect(run(&tfo, [(41, Array(text[0..<10]), true), (52, Array(text[10...]), false)]) == text)
        var mid = StreamReassembler()
        #expect(run(&mid, [(7_000, Array(text[0..<10]), false), (7_010, Array(text[10...]), false)]) == text)
        var wrap = StreamReassembler()
        let start = UInt32.max - 4
        #expect(run(&wrap, [(start, Array(text[0..<10]), false), (start &+ 10, Array(text[10...]), false)]) == text)
    }

    @Test("a hole past the buffer budget is skipped and reported as a gap; finish flushes what waits")
    func gaps() {
        var r = StreamReassembler(maxBuffered: 16)
        let out = run(&r, [(100, Array(text[0..<5]), false), (110, Array(text[10..<20]), false),
                           (120, Array(text[20..<30]), false)])
        #expect(out == Array(text[0..<5]) + [UInt8](repeating: 0xee, count: 5) + Array(text[10..<30]))
        #expect(r.gapBytes == 5)
        var f = StreamReassembler()
        var tail: [UInt8] = []
        _ = run(&f, [(100, Array(text[0..<5]), false), (110, Array(text[10..<20]), false)])
        f.finish { e in if case .data(let d) = e { tail += Array(d) } }
        #expect(tail == Array(text[10..<20]))
    }

    @Test("the first copy of a byte wins whichever order copies arrive in; differing copies are counted")
    func conflicts() {
        let isn: UInt32 = 1000
        let original = Array(text[10..<20])
        let forged = [UInt8](repeating: 0x58, count: 15)  // "XXX…" for bytes 0..<15
        // Held first (out of order), then a different copy of part of it arrives in order: the held one wins.
        var a = StreamReassembler()
        let outA = run(&a, [(isn, [], true), (isn + 1 + 10, original, false), (isn + 1, forged, false),
                            (isn + 1 + 20, Array(text[20...]), false)])
        #expect(outA == forged[0..<10] + original + text[20...])
        #expect(a.conflicts == 1)
        // A different copy of held bytes arriving out of order too: still the first, and counted.
        var b = StreamReassembler()
        let outB = run(&b, [(isn, [], true), (isn + 1 + 10, original, false),
                            (isn + 1 + 12, [UInt8](repeating: 0x58, count: 4), false), (isn + 1, Array(text[0..<10]), false),
                            (isn + 1 + 20, Array(text[20...]), false)])
        #expect(outB == text)
        #expect(b.conflicts == 1 && b.buffered == 0)
        // Identical retransmissions and overlaps are not conflicts.
        var c = StreamReassembler()
        let outC = run(&c, [(isn, [], true), (isn + 1 + 10, original, false), (isn + 1 + 5, Array(text[5..<15]), false),
                            (isn + 1, Array(text[0..<12]), false), (isn + 1 + 20, Array(text[20...]), false)])
        #expect(outC == text)
        #expect(c.conflicts == 0)
    }

    @Test("a segment larger than the whole budget is delivered after a reported gap, not lost")
    func oversized() {
        var r = StreamReassembler(maxBuffered: 100)
        let big = [UInt8](repeating: 0x41, count: 500)
        let out = run(&r, [(100, Array(text[0..<5]), false), (200, big, false), (700, Array(text[0..<5]), false)])
        #expect(out == Array(text[0..<5]) + [UInt8](repeating: 0xee, count: 95) + big + Array(text[0..<5]))
        #expect(r.gapBytes == 95 && r.buffered == 0)
    }

    @Test("a flood of one-byte out-of-order segments stays within the budget, overhead included")
    func tinySegmentFlood() {
        let budget = 4096
        var r = StreamReassembler(maxBuffered: budget)
        var peak = 0
        var gaps = 0
        var delivered = 0
        // One byte every other sequence number: every segment leaves a hole before it. 20,000 of them.
        for i in 0..<20_000 {
            let seq = UInt32(5000 + 2 * i)
            [UInt8(i & 0xff)].withUnsafeBytes { raw in
                r.add(seq: seq, syn: false, payload: raw) { e in
                    switch e {
                    case .data(let d): delivered += d.count
                    case .gap: gaps += 1
                    case .cut: Issue.record("no segment here was cut")
                    }
                }
            }
            peak = max(peak, r.buffered)
        }
        #expect(peak <= budget)
        #expect(peak > budget - 2 * (1 + StreamReassembler.segmentOverhead), "the budget was used, not refused early")
        // Everything is either delivered now or still held: nothing vanished.
        let held = r.buffered / (1 + StreamReassembler.segmentOverhead)
        #expect(delivered + held == 20_000)
        #expect(gaps == delivered - 1)
    }
}
