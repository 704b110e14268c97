import Flows
import Testing

/// Feeds segments (seq, bytes) and returns what came out: data bytes, with each gap as that many 0xEE bytes.
private func run(_ r: inout StreamReassembler, _ segments: [(UInt32, [UInt8], Bool)]) -> [UInt8] {
    var out: [UInt8] = []
    for (seq, bytes, syn) in segments {
        bytes.withUnsafeBytes { raw in
            r.add(seq: seq, syn: syn, payload: raw) { e in
                switch e {
                case .data(let d): out += Array(d)
                case .gap(let n): out += [UInt8](repeating: 0xee, count: n)
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
}
