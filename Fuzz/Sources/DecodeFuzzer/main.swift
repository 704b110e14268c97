// Fuzzes PacketDecoder on every link type it supports, with IP reassembly and `resume` as the decode worker
// drives them, over a sequence of frames (fragments of one datagram, tunnels inside reassembled datagrams).
//
// Input: [link type][reassembly budget] then frames, each [time step][length u16][bytes] (the last frame takes
// what is left when its length runs past the end). See Seeds.swift for examples.
// Checks, besides AddressSanitizer: the payload and fragment ranges the decoder reports lie inside the bytes it
// decoded (the pipeline slices the frame with them).
import Decode
import Flows
import FuzzSupport

/// Every link type `LinkType` has, in raw-value order: a link type added later is fuzzed without editing this file.
let linkTypes: [LinkType] = (0...UInt16.max).compactMap(LinkType.init(rawValue:))
/// Reassembly memory budgets, in datagrams of 64 KiB: small ones exercise eviction.
let budgets = [1, 2, 4, 512]
/// Time steps between frames (ns): the last jumps past the reassembler's 30 s timeout.
let timeSteps: [UInt64] = [1_000, 0, 1_000_000_000, 31_000_000_000]

/// Writes the seeds (or dictionary) when asked, before libFuzzer starts: see FuzzerOptions.
@_cdecl("LLVMFuzzerInitialize")
public func decodeFuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    FuzzerOptions.handle(seeds: decodeSeeds)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func decodeFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let linkType = linkTypes[Int(input.u8()) % linkTypes.count]
    let reassembler = FragmentReassembler(memoryBudget: budgets[Int(input.u8()) % budgets.count] * 65_536,
                                          timeoutNanoseconds: 30_000_000_000)
    var packet = DecodedPacket()
    var now: UInt64 = 1_000_000_000
    while input.remaining > 0 {
        now &+= timeSteps[Int(input.u8()) % timeSteps.count]
        let frame = input.take(Int(input.u16()))
        withExactCopy(of: frame) { decodeFrame($0, linkType, reassembler, &packet, now) }
    }
    _ = reassembler.flush()
    return 0
}

/// What `DecodeWorker.process` does with a frame, up to flow tracking.
func decodeFrame(_ bytes: UnsafeRawBufferPointer, _ linkType: LinkType, _ reassembler: FragmentReassembler,
                 _ packet: inout DecodedPacket, _ now: UInt64)
{
    var outcome = PacketDecoder.decode(bytes, linkType: linkType, into: &packet)
    check(packet.wireLength == bytes.count, "wireLength \(packet.wireLength) of a \(bytes.count)-byte frame")
    var source = bytes
    var rounds = 0
    while outcome == .fragment, rounds < 4 {
        rounds += 1
        let f = packet.fragment
        check(f.dataOffset >= 0 && f.dataLength >= 0 && f.dataOffset + f.dataLength <= source.count,
              "fragment data \(f.dataOffset)+\(f.dataLength) outside the \(source.count) bytes decoded")
        check(f.fragmentOffset >= 0, "negative fragment offset \(f.fragmentOffset)")
        switch reassembler.add(f, bytes: source, packet: packet, now: now) {
        case .incomplete, .refused:
            return
        case .complete(let datagram, let proto):
            check(datagram.count <= FragmentReassembler.maximumDatagram, "datagram of \(datagram.count) bytes")
            source = datagram
            outcome = PacketDecoder.resume(datagram: datagram, ipProtocol: proto, into: &packet)
        }
    }
    guard outcome == .complete else { return }
    let offset = packet.payloadOffset, length = packet.payloadLength
    check(offset >= 0 && length >= 0 && offset + length <= source.count,
          "payload \(offset)+\(length) outside the \(source.count) bytes decoded")
    // Read the payload as the extractors would: AddressSanitizer checks the range against the allocation.
    var sum: UInt8 = 0
    for b in UnsafeRawBufferPointer(rebasing: source[offset..<offset + length]) { sum &+= b }
    payloadSum &+= sum
}

/// Keeps the payload reads from being optimized away.
nonisolated(unsafe) var payloadSum: UInt8 = 0

