// Fuzzes QUICInitialParser and what follows it in QUICTracker (CRYPTO frames, CryptoStreamAssembler,
// ClientHelloParser). Three modes, by the first byte:
// 0. a raw datagram (any version, coalesced packets, Retry, version negotiation): the header parsing, and the
//    frame walk on the raw bytes;
// 1. the fuzz bytes are the plaintext frames of an Initial that the harness protects as a client does (RFC 9001
//    keys from a fuzz-chosen DCID, AES-128-GCM, header protection), so the parser decrypts it and walks frames
//    that random datagrams never reach;
// 2. the fuzz bytes are a ClientHello body, carried in CRYPTO frames (split, reordered, across two coalesced
//    Initials), so the assembler and ClientHelloParser see hellos that survived decryption.
//
// Built-packet input: [mode][version][DCID length][DCID][SCID length][SCID][token length][token][options]
// [packet number u32][split u16][payload]. Options: bits 0-1 packet number length - 1, bit 2 a second coalesced
// Initial (carrying the payload after `split`), bit 3 a 4-byte Length field, bit 4 CRYPTO frames in reverse order,
// bit 5 a short-header packet after the Initials, bit 6 a Handshake packet before them.
// Checks, besides AddressSanitizer: every built Initial decrypts, with its version, connection IDs, packet number
// and the CRYPTO frames of its plaintext; declined by `wants`, none is decrypted; a ClientHello carried whole
// comes out of the assembler byte for byte.
import Extract
import FuzzSupport

let versions: [UInt32] = [1, RFCInitial.version2, 0xff00_001d, 0xff00_0017, 0xff00_0021, 0xff00_0020]

/// Writes the seeds (or dictionary) when asked, before libFuzzer starts: see FuzzerOptions.
@_cdecl("LLVMFuzzerInitialize")
public func quicFuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    FuzzerOptions.handle(seeds: quicSeeds)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func quicFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    switch input.u8() % 3 {
    case 0: raw(&input)
    case 1: built(&input, helloMode: false)
    default: built(&input, helloMode: true)
    }
    return 0
}

/// A datagram as it came off the wire.
func raw(_ input: inout FuzzInput) {
    let wanted = input.u8() & 1 == 0
    let datagram = input.rest()
    if case .initials(let initials) = QUICInitialParser.parse(datagram, wants: { _, _ in wanted }) {
        check(wanted, "an Initial was decrypted that `wants` declined")
        var stream = CryptoStreamAssembler()
        for initial in initials { assemble(&stream, initial.crypto) }
    }
    // The frame walk on the raw bytes too (as if they were a decrypted payload).
    var stream = CryptoStreamAssembler()
    assemble(&stream, QUICInitialParser.cryptoFrames(datagram))
}

/// Adds CRYPTO frames to the assembler as QUICTracker does; a completed ClientHello is parsed. Returns it.
@discardableResult
func assemble(_ stream: inout CryptoStreamAssembler, _ frames: [(offset: UInt64, data: [UInt8])]) -> [UInt8]? {
    var hello: [UInt8]?
    for frame in frames where hello == nil {
        hello = stream.add(offset: frame.offset, data: frame.data)
    }
    check(stream.held <= 2 * stream.limit, "assembler holds \(stream.held) bytes, limit \(stream.limit)")
    if let hello {
        check(stream.finished && stream.held == 0, "a completed assembler still holds \(stream.held) bytes")
        _ = withExactCopy(of: hello) { try? ClientHelloParser.parse($0) }
    }
    return hello
}

/// An Initial (or two) protected by the harness, so decryption succeeds and what follows it is fuzzed.
func built(_ input: inout FuzzInput, helloMode: Bool) {
    var b = InitialBuilder()
    b.version = versions[Int(input.u8()) % versions.count]
    b.dcid = input.take(Int(input.u8() % 21))
    b.scid = input.take(Int(input.u8() % 21))
    b.token = input.take(Int(input.u8() % 48))
    let options = input.u8()
    b.packetNumberLength = Int(options & 3) + 1
    b.lengthFieldSize = options & 8 != 0 ? 4 : 2
    b.packetNumber = input.u32()
    let split = Int(input.u16())
    let rest = input.rest()

    // The plaintext of each Initial.
    var plaintexts: [[UInt8]]
    var hello: [UInt8] = []
    if helloMode {
        hello = rest.withHandshakeHeader
        let cut = split % (hello.count + 1)
        var frames = [cryptoFrame(offset: 0, hello[..<cut]), cryptoFrame(offset: cut, hello[cut...])]
        if options & 0x10 != 0 { frames.reverse() }
        plaintexts = options & 4 != 0 ? frames.map { [UInt8]($0) } : [frames.flatMap { $0 }]
    } else {
        let cut = split % (rest.count + 1)
        plaintexts = options & 4 != 0 ? [Array(rest[..<cut]), Array(rest[cut...])] : [rest]
    }

    var datagram: [UInt8] = options & 0x40 != 0 ? b.otherLongHeaderPacket(length: 24) : []
    var expected: [(pn: UInt64, plaintext: [UInt8])] = []
    for plain in plaintexts {
        datagram += b.protect(plain)
        expected.append((b.truncatedPacketNumber, b.padded(plain)))
        b.packetNumber &+= 1
    }
    if options & 0x20 != 0 { datagram += [0x40] + [UInt8](repeating: 0xa5, count: 24) }

    guard case .initials(let initials) = QUICInitialParser.parse(datagram) else {
        fatalError("a protected Initial did not decrypt: \(QUICInitialParser.parse(datagram))")
    }
    check(initials.count == expected.count, "\(initials.count) Initials decrypted, \(expected.count) sent")
    for (got, sent) in zip(initials, expected) {
        check(got.version == b.version && got.dcid == b.dcid && got.scid == b.scid,
              "header fields: version \(got.version) dcid \(got.dcid) scid \(got.scid)")
        check(got.packetNumber == sent.pn, "packet number \(got.packetNumber), sent \(sent.pn)")
        let frames = QUICInitialParser.cryptoFrames(sent.plaintext)
        check(got.crypto.count == frames.count
              && zip(got.crypto, frames).allSatisfy { $0.offset == $1.offset && $0.data == $1.data },
              "CRYPTO frames differ from those of the plaintext")
    }
    if case .initials = QUICInitialParser.parse(datagram, wants: { _, _ in false }) {
        fatalError("Initials decrypted although `wants` declined them")
    }

    var stream = CryptoStreamAssembler()
    var completed: [UInt8]?
    for initial in initials where completed == nil { completed = assemble(&stream, initial.crypto) }
    if helloMode {
        check(completed == hello, "the ClientHello did not come out of the assembler whole")
    }
}

