// Fuzzes the TLS ClientHello path of a TCP stream: ClientHelloParser on the raw bytes, TLSClientHelloCollector fed
// in pieces with gaps, and the collector behind a StreamReassembler fed out-of-order, dropped, retransmitted and
// conflicting segments, as TLSTracker drives them.
//
// Input: [flags][ISN u32][piece count][pieces...][stream]. Flags: bit 0 the reassembler starts at the ISN
// (handshake seen), bit 1 a pure SYN is sent first, bits 2-4 the reassembler's budget, bits 5-7 how a
// retransmitted copy differs from the first. Each piece byte: bits 0-5 its length (0 in the collector-only run:
// a gap), bits 6-7 what the reassembler run does with it: send in order, send late (after the in-order ones, in
// reverse), never send (a hole), or send in order and again at the end, widened to overlap its neighbours.
// Checks, besides AddressSanitizer:
// - the reassembler delivers each stream byte as its first copy to arrive (first copy wins), reports every byte
//   it skips as a gap, holds at most its budget, and its counters agree with what it delivered;
// - identical copies never count as conflicts;
// - a collector gives at most one outcome, is finished exactly when it gave one, and gives the same ClientHello
//   whether the stream came in pieces or in one.
import Extract
import Flows
import FuzzSupport

let budgets = [0, 64, 100, 256, 1024, 4096, 65536, 256 * 1024]
let conflictMasks: [UInt8] = [0, 0, 0, 0, 0x01, 0x80, 0x20, 0xff]

/// Writes the seeds (or dictionary) when asked, before libFuzzer starts: see FuzzerOptions.
@_cdecl("LLVMFuzzerInitialize")
public func tlsFuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    FuzzerOptions.handle(seeds: tlsSeeds)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func tlsFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let flags = input.u8()
    let isn = input.u32()
    let descriptors = input.take(Int(input.u8() % 17))
    let stream = input.rest()

    // The pieces, in stream order: (start, end, action); the rest of the stream is a last, in-order piece.
    var pieces: [(start: Int, end: Int, action: UInt8, length: Int)] = []
    var cursor = 0
    for d in descriptors {
        let end = min(cursor + Int(d & 0x3f), stream.count)
        pieces.append((cursor, end, d >> 6, Int(d & 0x3f)))
        cursor = end
    }
    pieces.append((cursor, stream.count, 0, stream.count - cursor))

    withExactCopy(of: stream) { raw in
        _ = ClientHelloParser.messageLength(raw)
        _ = ClientHelloParser.isSSLv2Hello(raw)
        _ = try? ClientHelloParser.parse(raw)
    }
    collectInPieces(stream, pieces.map { ($0.start, $0.end, $0.length == 0) })
    reassemble(stream, pieces.map { ($0.start, $0.end, $0.action) }, isn: isn,
               startAtISN: flags & 1 != 0, pureSYN: flags & 2 != 0,
               budget: budgets[Int(flags >> 2 & 7)], conflictMask: conflictMasks[Int(flags >> 5)])
    return 0
}

/// A collector and the checks on what it returns.
struct CheckedCollector {
    var collector = TLSClientHelloCollector()
    var outcome: TLSClientHelloCollector.Outcome?

    mutating func record(_ o: TLSClientHelloCollector.Outcome?) {
        guard let o else { return }
        check(outcome == nil, "a second outcome \(o) after \(outcome!)")
        outcome = o
    }

    mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        record(collector.feed(bytes))
        check(collector.finished == (outcome != nil),
              "finished \(collector.finished), outcome \(String(describing: outcome))")
    }

    mutating func gap() {
        record(collector.gap())
        check(collector.finished == (outcome != nil), "finished \(collector.finished) after a gap")
    }
}

/// The collector fed the stream piece by piece (an empty piece is a gap), then in one piece: same ClientHello.
func collectInPieces(_ stream: [UInt8], _ pieces: [(start: Int, end: Int, gap: Bool)]) {
    var split = CheckedCollector()
    var gaps = false
    for p in pieces {
        if p.gap {
            split.gap()
            gaps = true
        } else {
            withExactCopy(of: stream[p.start..<p.end]) { split.feed($0) }
        }
    }
    guard !gaps else { return }
    var whole = CheckedCollector()
    withExactCopy(of: stream) { whole.feed($0) }
    switch (split.outcome, whole.outcome) {
    case (nil, nil), (.gaveUp, .gaveUp):
        break  // the reasons may differ (an SSLv2 hello needs its third byte to be recognized)
    case (.clientHello(let a), .clientHello(let b)) where a == b:
        break
    default:
        fatalError("the collector depends on the segmentation: \(String(describing: split.outcome)) in "
                   + "\(pieces.count) pieces, \(String(describing: whole.outcome)) in one")
    }
}

/// The stream as TCP segments through a StreamReassembler into a collector, checked against a model: the byte
/// delivered at each position is the first copy of it that was sent.
func reassemble(_ stream: [UInt8], _ pieces: [(start: Int, end: Int, action: UInt8)], isn: UInt32, startAtISN: Bool,
                pureSYN: Bool, budget: Int, conflictMask: UInt8)
{
    var reassembler = StreamReassembler(maxBuffered: budget)
    var collector = CheckedCollector()
    var firstCopy = [Int16](repeating: -1, count: stream.count)
    var position: Int?  // stream offset of the next byte delivered; nil until the stream starts
    var deliveredBytes: UInt64 = 0, skippedBytes: UInt64 = 0

    if startAtISN {
        reassembler.start(at: isn)
        position = 0
    }
    if pureSYN {
        reassembler.add(seq: isn &- 1, syn: true, payload: UnsafeRawBufferPointer(start: nil, count: 0)) { _ in
            fatalError("a SYN without data delivered something")
        }
        position = 0
    }

    func deliver(_ event: StreamReassembler.Event) {
        guard let at = position else { fatalError("delivery before the stream started") }
        switch event {
        case .data(let bytes):
            check(!bytes.isEmpty, "empty delivery")
            check(at + bytes.count <= stream.count, "delivered past the end of what was sent: "
                  + "\(bytes.count) bytes at \(at) of \(stream.count)")
            for k in 0..<bytes.count where firstCopy[at + k] != Int16(bytes[k]) {
                fatalError("stream byte \(at + k): delivered \(bytes[k]), first copy sent \(firstCopy[at + k])")
            }
            position = at + bytes.count
            deliveredBytes += UInt64(bytes.count)
            if collector.outcome == nil { collector.feed(bytes) }
        case .gap(let n):
            check(n > 0, "a gap of \(n) bytes")
            check(at + n <= stream.count, "a gap past the end of what was sent: \(n) bytes at \(at)")
            position = at + n
            skippedBytes += UInt64(n)
            if collector.outcome == nil { collector.gap() }
        case .cut(let n):
            fatalError("a cut of \(n) bytes delivered, but no segment sent here said it was cut")
        }
    }

    func send(_ start: Int, _ end: Int, mask: UInt8 = 0) {
        guard start < end else { return }
        let bytes = stream[start..<end].map { $0 ^ mask }
        for k in start..<end where firstCopy[k] < 0 { firstCopy[k] = Int16(bytes[k - start]) }
        if position == nil { position = start }  // mid-stream pickup: the stream starts at the first data
        withExactCopy(of: bytes) { raw in
            reassembler.add(seq: isn &+ UInt32(start), syn: false, payload: raw, deliver: deliver)
        }
        check(reassembler.buffered <= reassembler.maxBuffered,
              "holding \(reassembler.buffered) bytes, budget \(reassembler.maxBuffered)")
    }

    for p in pieces where p.action == 0 || p.action == 3 { send(p.start, p.end) }
    for p in pieces.reversed() where p.action == 1 { send(p.start, p.end) }
    for p in pieces where p.action == 3 {
        let widen = (p.end - p.start) / 2
        send(max(0, p.start - widen), min(stream.count, p.end + widen), mask: conflictMask)
    }
    reassembler.finish(deliver)

    check(reassembler.buffered == 0, "\(reassembler.buffered) bytes still held after finish")
    check(reassembler.delivered == deliveredBytes, "delivered counter \(reassembler.delivered), saw \(deliveredBytes)")
    check(reassembler.gapBytes == skippedBytes, "gap counter \(reassembler.gapBytes), saw \(skippedBytes)")
    if conflictMask == 0 { check(reassembler.conflicts == 0, "identical copies counted as conflicts") }
    if let position, reassembler.started {
        check(reassembler.next == isn &+ UInt32(truncatingIfNeeded: position),
              "next \(reassembler.next), expected ISN + \(position)")
    }
}

