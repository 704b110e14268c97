// Seed inputs for the TLS harness: ClientHellos built in code (SNI, ALPN, supported_versions, key_share, ECH,
// ESNI, none), in one record or many, after an HTTP CONNECT, an SSLv2 hello, not-TLS, with pieces sent in and out
// of order.
import FuzzSupport

/// A harness input: `flags`, ISN, piece descriptors (length | action << 6) and the stream.
func tlsInput(_ stream: [UInt8], flags: UInt8 = 0b0001_1001, isn: UInt32 = 0xffff_ff00,
              pieces: [(length: Int, action: UInt8)] = []) -> [UInt8] {
    [flags] + bigEndian(UInt64(isn), count: 4) + [UInt8(pieces.count)]
        + pieces.map { UInt8(min($0.length, 63)) | $0.action << 6 } + stream
}

func tlsSeeds() -> [Seed] {
    typealias H = ClientHellos
    let full = H.message([H.sni("edge.example.net"), H.alpn(["h2", "http/1.1"]), H.supportedVersions, H.keyShare])
    let ech = H.message([H.sni("public.example"), H.ech, H.alpn(["h3"])], sessionID: [UInt8](repeating: 5, count: 32))
    let inputs: [(String, [UInt8])] = [
        ("one-record", tlsInput(H.records(full))),
        ("small-records", tlsInput(H.records(full, recordSize: 40))),
        ("ech", tlsInput(H.records(ech))),
        ("esni-no-sni", tlsInput(H.records(H.message([H.esni, H.supportedVersions])))),
        ("no-extensions", tlsInput(H.records(Array(H.body([]).dropLast(2)).withHandshakeHeader))),
        ("connect", tlsInput(ascii("CONNECT edge.example:443 HTTP/1.1\r\nHost: edge.example:443\r\n\r\n")
                             + H.records(full))),
        ("sslv2", tlsInput([0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0, 0, 0, 0x10]
                           + [UInt8](repeating: 1, count: 37))),
        ("not-tls", tlsInput(ascii("GET / HTTP/1.1\r\n\r\n"))),
        ("cut-extensions", tlsInput(Array(H.records(full).dropLast(20)))),
        ("pieces-in-order", tlsInput(H.records(full), pieces: [(10, 0), (0, 0), (33, 0), (5, 0)])),
        ("pieces-out-of-order", tlsInput(H.records(full), flags: 0b0001_1010,
                                         pieces: [(20, 0), (30, 1), (30, 1), (12, 0), (40, 3)])),
        ("pieces-hole", tlsInput(H.records(full, recordSize: 64), flags: 0b0000_1100,
                                 pieces: [(16, 0), (16, 2), (40, 0)])),
        ("retransmit-conflict", tlsInput(H.records(full), flags: 0b1001_1001, isn: 0x7fff_fff0,
                                         pieces: [(30, 1), (30, 3), (30, 0)])),
        ("mid-stream", tlsInput(H.records(full), flags: 0b0001_0000, pieces: [(20, 2), (20, 0)])),
        // Regression (found in CI): a segment split over several holes was charged one piece's bookkeeping, so
        // the reassembler held more than its budget.
        ("budget-split-pieces", hexBytes("6d0000106564670016830100930100008fc700ababababababababffc8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8ababababababababc8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8ababababababababab13011302c02f0100006000d40000150013000010656467652e6578616d000010656467652e6578616d706c652e6e65740009090909090909090909abab657861006d1000656467652e6578616d706c652e6e65740009090909090909090909090909")),
    ]
    return inputs.enumerated().map { Seed("\($0.offset)-\($0.element.0)", $0.element.1) }
}

/// Bytes from a hex string (regression inputs as the fuzz script prints them).
func hexBytes(_ text: String) -> [UInt8] {
    let digits = Array(text.utf8)
    return stride(from: 0, to: digits.count - 1, by: 2).map { i in
        func v(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : (c | 0x20) - 87 }
        return v(digits[i]) << 4 | v(digits[i + 1])
    }
}
