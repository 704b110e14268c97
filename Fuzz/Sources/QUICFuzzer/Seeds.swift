// Seed inputs for the QUIC harness: the RFC 9001 / RFC 9369 client Initials (raw), their payload as frames to
// protect, ClientHellos to carry, version negotiation, an unsupported version, a Retry. Also checks, every time
// seeds are written, that InitialBuilder protects the RFC payload into the RFC's packet, byte for byte.
import Extract
import FuzzSupport

/// A built-mode input (see main.swift).
func builtInput(mode: UInt8, version: Int = 0, dcid: [UInt8] = RFCInitial.dcid, scid: [UInt8] = [],
                token: [UInt8] = [], options: UInt8 = 3, packetNumber: UInt32 = 2, split: Int = 0,
                _ payload: [UInt8]) -> [UInt8] {
    [mode, UInt8(version), UInt8(dcid.count)] + dcid + [UInt8(scid.count)] + scid + [UInt8(token.count)] + token
        + [options] + bigEndian(UInt64(packetNumber), count: 4) + bigEndian(UInt64(split), count: 2) + payload
}

func quicSeeds() -> [Seed] {
    checkBuilderAgainstRFC()
    typealias H = ClientHellos
    let rfcHelloBody = Array(RFCInitial.payload[8...])  // after the CRYPTO frame header and the handshake header
    let hello = H.body([H.sni("edge.example.net"), H.alpn(["h3"]), H.supportedVersions, H.keyShare])
    let ack: [UInt8] = [0x02, 0x05, 0x00, 0x01, 0x00, 0x01, 0x00]  // largest 5, delay, 1 range
    let ackECN: [UInt8] = [0x03, 0x05, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03]
    let close: [UInt8] = [0x1c, 0x0a, 0x06, 0x03] + ascii("bye")
    let inputs: [(String, [UInt8])] = [
        ("raw-rfc9001", [0, 0] + RFCInitial.protectedV1),
        ("raw-rfc9369", [0, 0] + RFCInitial.protectedV2),
        ("raw-version-negotiation", [0, 0, 0x80, 0, 0, 0, 0, 8] + RFCInitial.dcid + [0, 0, 0, 0, 1]),
        ("raw-q046", [0, 0, 0xc3, 0x51, 0x30, 0x34, 0x36, 0x50] + [UInt8](repeating: 7, count: 8) + [0, 0, 0, 0]),
        ("raw-retry", [0, 0, 0xf0, 0, 0, 0, 1, 8] + RFCInitial.dcid + [0] + [UInt8](repeating: 0x11, count: 24)),
        ("raw-frames", [0, 1] + ack + [1, 0, 0] + RFCInitial.payload + close),
        ("frames-rfc", builtInput(mode: 1, RFCInitial.payload)),
        ("frames-v2", builtInput(mode: 1, version: 1, options: 0x40, RFCInitial.payload)),
        ("frames-ack-ping-close", builtInput(mode: 1, options: 0x21, packetNumber: 0,
                                             ack + [1] + cryptoFrame(offset: 0, RFCInitial.payload[4..<40])
                                                 + ackECN + close)),
        ("frames-two-initials", builtInput(mode: 1, version: 2, scid: [1, 2, 3, 4], options: 0x06, split: 100,
                                           RFCInitial.payload)),
        ("hello-rfc", builtInput(mode: 2, rfcHelloBody)),
        ("hello-split", builtInput(mode: 2, version: 3, token: [9, 9, 9], options: 0x1a, split: 60, hello)),
        ("hello-two-initials", builtInput(mode: 2, version: 4, dcid: [], options: 0x04, split: 30, hello)),
        ("hello-ech", builtInput(mode: 2, version: 5, dcid: [UInt8](repeating: 0xee, count: 20), options: 0x08,
                                 H.body([H.sni("public.example"), H.ech, H.alpn(["h3", "h3-29"])]))),
    ]
    return inputs.enumerated().map { Seed("\($0.offset)-\($0.element.0)", $0.element.1) }
}

/// The builder must reproduce RFC 9001 A.2 and RFC 9369 A.2 exactly, or its oracle would be wrong.
func checkBuilderAgainstRFC() {
    let payload = RFCInitial.payload + [UInt8](repeating: 0, count: RFCInitial.paddingZeros)
    for (version, expected) in [(UInt32(1), RFCInitial.protectedV1), (RFCInitial.version2, RFCInitial.protectedV2)] {
        var b = InitialBuilder()
        b.version = version
        b.dcid = RFCInitial.dcid
        b.packetNumberLength = 4
        b.packetNumber = 2
        check(b.protect(payload) == expected, "InitialBuilder does not reproduce the RFC packet of version \(version)")
    }
}
