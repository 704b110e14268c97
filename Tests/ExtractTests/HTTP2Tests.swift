import Extract
import Testing

private func bytes(_ s: String) -> [UInt8] { hex(s.filter { !$0.isWhitespace }) }

private func decode(_ d: HPACKDecoder, _ block: [UInt8]) throws -> [[String]] {
    var fields: [[String]] = []
    try block.withUnsafeBytes { raw in
        try d.decode(raw) { n, v in fields.append([String(decoding: n, as: UTF8.self), String(decoding: v, as: UTF8.self)]) }
    }
    return fields
}

/// A frame: 24-bit length, type, flags, stream.
private func frame(_ type: UInt8, _ flags: UInt8, _ stream: UInt32, _ payload: [UInt8]) -> [UInt8] {
    [UInt8(payload.count >> 16), UInt8(payload.count >> 8 & 0xff), UInt8(payload.count & 0xff), type, flags,
     UInt8(stream >> 24), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)] + payload
}

private let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

private func read(_ side: HTTP2FrameReader.Side, _ chunks: [[UInt8]]) -> [HTTP2Event] {
    var r = HTTP2FrameReader(side: side)
    var out: [HTTP2Event] = []
    for c in chunks { c.withUnsafeBytes { r.feed($0) { out.append($0) } } }
    return out
}

@Suite("HTTP/2: libnghttp2's HPACK (RFC 7541 Appendix C) and the frame reader (RFC 9113)")
struct HTTP2Tests {
    @Test("C.3: three requests without Huffman through one decoder, the dynamic table as the RFC says")
    func requestsWithoutHuffman() throws {
        let d = HPACKDecoder()
        #expect(try decode(d, bytes("828684410f7777772e6578616d706c652e636f6d")) ==
                [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]])
        #expect(d.dynamicTableSize == 57)
        #expect(try decode(d, bytes("828684be58086e6f2d6361636865")) ==
                [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"],
                 ["cache-control", "no-cache"]])
        #expect(d.dynamicTableSize == 110)
        #expect(try decode(d, bytes("828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565")) ==
                [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"],
                 ["custom-key", "custom-value"]])
        #expect(d.dynamicTableSize == 164)
    }

    @Test("C.4: the same requests with Huffman coding")
    func requestsWithHuffman() throws {
        let d = HPACKDecoder()
        #expect(try decode(d, bytes("828684418cf1e3c2e5f23a6ba0ab90f4ff")) ==
                [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]])
        #expect(try decode(d, bytes("828684be5886a8eb10649cbf")) ==
                [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"],
                 ["cache-control", "no-cache"]])
        #expect(try decode(d, bytes("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf")) ==
                [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"],
                 ["custom-key", "custom-value"]])
        #expect(d.dynamicTableSize == 164)
    }

    @Test("C.5.1: a response with a 256-byte table (a size update first), status and headers")
    func response() throws {
        let d = HPACKDecoder()
        // A Dynamic Table Size Update to 256 (RFC 7541 §6.3: 001xxxxx, 5-bit prefix: 0x3f 0xe1 0x01), then C.5.1.
        let fields = try decode(d, bytes("""
            3fe101 4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d\
            546e1768747470733a2f2f7777772e6578616d706c652e636f6d
            """))
        #expect(fields == [[":status", "302"], ["cache-control", "private"], ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
                           ["location", "https://www.example.com"]])
        #expect(d.dynamicTableSize == 222)
    }

    @Test("a bad block fails, and the decoder stays unusable (its table is lost)")
    func badBlock() throws {
        let d = HPACKDecoder()
        // Index 70: past the static table with an empty dynamic table.
        #expect(throws: HPACKDecoder.Failure.self) { try decode(d, [0xc6]) }
        #expect(throws: HPACKDecoder.Failure.unusable) { try decode(d, [0x82]) }
    }

    @Test("frames: preface, HEADERS split over CONTINUATION, PADDED and PRIORITY, RST_STREAM; DATA skipped")
    func frames() throws {
        let block = bytes("828684410f7777772e6578616d706c652e636f6d")
        let padded: [UInt8] = [3] + [0, 0, 0, 1, 16] + Array(block[0..<6]) + [0, 0, 0]
        let stream = preface
            + frame(0x4, 0, 0, [0, 3, 0, 0, 0, 100])                // SETTINGS
            + frame(0x1, 0x8 | 0x20 | 0x1, 1, padded)                 // HEADERS: padded, priority, END_STREAM
            + frame(0x9, 0x4, 1, Array(block[6...]))                  // CONTINUATION, END_HEADERS
            + frame(0x0, 0x1, 3, Array(repeating: 0x61, count: 40))   // DATA
            + frame(0x3, 0, 5, [0, 0, 0, 8])                          // RST_STREAM
        // Fed one byte at a time: nothing depends on where segments end.
        let events = read(.client, stream.map { [$0] })
        var expected = HTTP2Headers()
        expected.method = "GET"
        expected.scheme = "http"
        expected.path = "/"
        expected.authority = "www.example.com"
        #expect(events == [.headers(stream: 1, expected, endStream: true, promised: nil), .endStream(3), .reset(5)])
    }

    @Test("a response's kept headers; a pushed request from PUSH_PROMISE")
    func serverSide() throws {
        let d = bytes("""
            3fe101 4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d\
            546e1768747470733a2f2f7777772e6578616d706c652e636f6d
            """)
        let push = [0, 0, 0, 2] + bytes("828784410f7777772e6578616d706c652e636f6d")
        let events = read(.server, [frame(0x1, 0x4, 1, d) + frame(0x5, 0x4, 1, push)])
        guard events.count == 2, case .headers(1, let h, false, nil) = events[0], case .headers(1, let p, false, 2) = events[1]
        else { Issue.record("\(events)"); return }
        #expect(h.status == 302)
        #expect(h.kept == ["cache-control": "private", "date": "Mon, 21 Oct 2013 20:13:21 GMT"])
        #expect(p.path == "/")
        #expect(p.scheme == "https")
    }

    @Test("lost sync: no preface, a frame inside a header block, an HPACK error; nothing after")
    func lostSync() {
        #expect(read(.client, [Array("GET / HTTP/1.1\r\n".utf8)]).count == 1)
        let split = frame(0x1, 0, 1, [0x82]) + frame(0x0, 0, 1, [1])
        guard case .lostSync = read(.server, [split]).first else { Issue.record("not lost"); return }
        let bad = frame(0x1, 0x4, 1, [0xc6]) + frame(0x1, 0x4, 3, [0x82])
        let events = read(.server, [bad])
        #expect(events.count == 1)
        guard case .lostSync = events.first else { Issue.record("\(events)"); return }
    }

    @Test("the table may grow past 4096 bytes only once the other side's SETTINGS allow it (up to 64 KiB)")
    func tableSizeFromSettings() throws {
        // A Dynamic Table Size Update to 8192 (001xxxxx: 0x3f, 8161 as 0xe1 0x3f), then :method GET.
        let grow: [UInt8] = [0x3f, 0xe1, 0x3f, 0x82]
        #expect(throws: HPACKDecoder.Failure.self) { try decode(HPACKDecoder(), grow) }
        let d = HPACKDecoder()
        d.allowTableSize(65536)
        #expect(try decode(d, grow) == [[":method", "GET"]])
        // Above 64 KiB is read as 64 KiB: a size update past it is refused.
        let huge = HPACKDecoder()
        huge.allowTableSize(1 << 20)
        #expect(throws: HPACKDecoder.Failure.self) { try decode(huge, [0x3f, 0xe1, 0xff, 0x07, 0x82]) }  // 131072
        let settings = frame(0x4, 0, 0, [0, 3, 0, 0, 0, 100, 0, 1, 0, 1, 0, 0])  // MAX_CONCURRENT_STREAMS, HEADER_TABLE_SIZE
        #expect(read(.server, [settings, frame(0x4, 0x1, 0, [])]) == [.headerTableSize(65536)])  // the ACK says nothing
    }

    @Test("references to one large table entry expand to no more than maxKeptBytes of kept fields")
    func amplification() {
        // :status 200, cache-control (a 4000-byte value, added to the table), then 254 references to it.
        var block: [UInt8] = [0x88, 0x58, 0x7f, 0xa1, 0x1e] + Array(repeating: 0x61, count: 4000)
        block += Array(repeating: 0xbe, count: 254)
        let events = read(.server, [frame(0x1, 0x4, 1, block)])
        guard events.count == 1, case .headers(1, let h, false, nil) = events[0] else { Issue.record("\(events)"); return }
        #expect(h.status == 200)
        #expect(h.truncated)
        let kept = h.kept["cache-control"]?.utf8.count ?? 0
        #expect(kept > 0 && kept <= HTTP2Headers.maxKeptBytes)
    }

    @Test("a header value that is not UTF-8 is left out (the block still counts, the table stays in step)")
    func notUTF8() {
        // :status 200, server: 0xff 0xfe (literal without indexing, name index 54), then the next block reads on.
        let events = read(.server, [frame(0x1, 0x4, 1, [0x88, 0x0f, 0x27, 0x02, 0xff, 0xfe]) + frame(0x1, 0x4, 3, [0x88])])
        guard events.count == 2, case .headers(1, let h, false, nil) = events[0], case .headers(3, let next, false, nil) = events[1]
        else { Issue.record("\(events)"); return }
        #expect(h.status == 200 && h.kept["server"] == nil && h.truncated)
        #expect(next.status == 200 && !next.truncated)
    }
}
