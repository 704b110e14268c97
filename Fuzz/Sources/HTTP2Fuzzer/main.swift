// Fuzzes what HTTPS reading parses from bytes an attacker controls once decrypted, or before: the HTTP/2 frame
// reader with libnghttp2's HPACK inflater (both sides), TLS record opening (TLS 1.3 and 1.2 suites, a fixed
// secret: the fuzzer's records fail authentication or are too short, never trap), and key-log lines.
//
// Input: [options][cut count][cuts...][bytes]. Options: bit 0 the server side (no preface), bits 1-2 which of
// the record protections opens the bytes as one record as well, bit 3 the bytes are also read as key-log text.
// Checks, besides AddressSanitizer: the frame reader gives the same events whatever the segment cuts (a reader
// must not depend on where TCP or TLS records cut the stream).
import Extract
import FuzzSupport

@_cdecl("LLVMFuzzerInitialize")
public func http2FuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    FuzzerOptions.handle(seeds: http2Seeds, dictionary: [])
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func http2FuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let options = input.u8()
    let cuts = input.take(Int(input.u8() % 9)).map { Int($0) }
    let bytes = input.rest()
    let side: HTTP2FrameReader.Side = options & 1 != 0 ? .server : .client

    var whole = HTTP2FrameReader(side: side)
    var expected: [HTTP2Event] = []
    bytes.withUnsafeBytes { raw in whole.feed(raw) { expected.append($0) } }
    var cut = HTTP2FrameReader(side: side)
    var got: [HTTP2Event] = []
    var at = 0
    for c in cuts + [bytes.count] {
        let end = min(bytes.count, at + c)
        bytes[at..<end].withUnsafeBytes { raw in cut.feed(raw) { got.append($0) } }
        at = end
    }
    if at < bytes.count { bytes[at...].withUnsafeBytes { raw in cut.feed(raw) { got.append($0) } } }
    precondition(got == expected, "HTTP/2 events depend on where the stream was cut")

    let suites: [UInt16] = [0x1301, 0x1302, 0x1303, 0xC02F]
    let suite = TLSCipherSuite(id: suites[Int(options >> 1 & 3)])!
    var protection = suite.tls13
        ? TLSRecordProtection(tls13: suite, secret: Array(repeating: 7, count: suite.hashLength))
        : TLSRecordProtection(tls12: suite, master: Array(repeating: 7, count: 48), clientRandom: Array(repeating: 1, count: 32),
                              serverRandom: Array(repeating: 2, count: 32), client: true)
    if bytes.count >= 5 {
        bytes.withUnsafeBytes { raw in
            let opened = try? protection.open(header: UnsafeRawBufferPointer(rebasing: raw[0..<5]),
                                              body: UnsafeRawBufferPointer(rebasing: raw[5...]))
            if let opened { _ = TLSRecordProtection.innerType(opened) }
        }
    }
    if options & 8 != 0 {
        let store = TLSKeyStore(limits: .init(maxConnections: 4, maxAgeNanoseconds: 10), clock: { 0 })
        let intake = store.add(text: Substring(String(decoding: bytes, as: UTF8.self)))
        precondition(intake.accepted <= bytes.count / 100 + 1, "more key-log lines than could fit")
        precondition(store.counters.held <= 4, "the key store holds more than its bound")
    }
    return 0
}

private func frame(_ type: UInt8, _ flags: UInt8, _ stream: UInt32, _ payload: [UInt8]) -> [UInt8] {
    [UInt8(payload.count >> 16), UInt8(payload.count >> 8 & 0xff), UInt8(payload.count & 0xff), type, flags,
     UInt8(stream >> 24), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)] + payload
}

func http2Seeds() -> [Seed] {
    let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    // RFC 7541 C.3.1 and C.5.1 header blocks.
    let request = hex("828684410f7777772e6578616d706c652e636f6d")
    let response = hex("3fe1014803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d")
    let client = preface + frame(0x4, 0, 0, [0, 3, 0, 0, 0, 100]) + frame(0x1, 0x5, 1, request)
        + frame(0x1, 0x1, 3, Array(request[0..<6])) + frame(0x9, 0x4, 3, Array(request[6...])) + frame(0x3, 0, 5, [0, 0, 0, 8])
    let server = frame(0x4, 0, 0, []) + frame(0x1, 0x4, 1, response) + frame(0x0, 0x1, 1, Array("hello".utf8))
        + frame(0x5, 0x4, 1, [0, 0, 0, 2] + request) + frame(0x7, 0, 0, [0, 0, 0, 1, 0, 0, 0, 0])
    let keys = "CLIENT_RANDOM \(String(repeating: "ab", count: 32)) \(String(repeating: "01", count: 48))\n# c\n"
        + "SERVER_TRAFFIC_SECRET_0 \(String(repeating: "cd", count: 32)) \(String(repeating: "02", count: 32))\n"
    return [
        Seed("client", [0, 3, 30, 1, 200] + client),
        Seed("server", [1, 2, 9, 40] + server),
        Seed("record-tls13", [2, 0] + [23, 3, 3, 0, 20] + Array(repeating: 0x55, count: 20)),
        Seed("keylog", [9, 0] + Array(keys.utf8)),
    ]
}
