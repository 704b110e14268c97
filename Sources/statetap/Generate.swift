import ArgumentParser
import Decode
import Foundation
import PacketCraft

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a capture of synthetic mobile-edge traffic (for demos, tests and benchmarks).",
        discussion: """
            The mix: plain, 802.1Q and QinQ tagged, MPLS and PPPoE Ethernet; GTP-U with a PDU session container \
            carrying IPv4 and IPv6; TCP HTTP sessions with handshake and teardown; UDP 443 exchanges; fragmented \
            UDP datagrams; ARP; and a few frames cut inside their headers. The same seed gives the same file.
            """)

    @Argument(help: "Output file.")
    var output: String

    @Option(help: "Packets to write (at least; the last session is completed).")
    var packets: Int = 100_000

    @Option(help: "File format: pcap or pcapng.")
    var format: CaptureFormat = .pcap

    @Option(help: "Seed of the traffic generator.")
    var seed: UInt64 = 0x5747_4154_4150

    @Flag(help: "Print the generated ground truth (what a correct decoder finds) as JSON.")
    var truth = false

    func validate() throws {
        guard packets > 0 else { throw ValidationError("--packets must be at least 1") }
    }

    func run() throws {
        let t = try writeSyntheticCapture(path: output, packets: packets, format: format, seed: seed)
        FileHandle.standardError.write(Data("wrote \(t.packets) packets (\(t.bytes) bytes) to \(output)\n".utf8))
        if truth { print(truthJSON(t)) }
    }
}

enum CaptureFormat: String, ExpressibleByArgument, CaseIterable {
    case pcap, pcapng
}

/// Writes a synthetic capture and returns its ground truth.
func writeSyntheticCapture(path: String, packets: Int, format: CaptureFormat, seed: UInt64) throws
    -> SyntheticTraffic.Truth
{
    var traffic = SyntheticTraffic(seed: seed)
    switch format {
    case .pcap:
        let w = try PcapWriter(path: path, linkType: .ethernet)
        try traffic.generate(packets: packets) { frame, ts in try w.write(packet: frame, timestampNanoseconds: ts) }
        try w.close()
    case .pcapng:
        let w = try PcapNGWriter(path: path, linkType: .ethernet)
        try traffic.generate(packets: packets) { frame, ts in try w.write(packet: frame, timestampNanoseconds: ts) }
        try w.close()
    }
    return traffic.truth
}

func truthJSON(_ t: SyntheticTraffic.Truth) -> String {
    let fields: [(String, Int)] = [
        ("packets", t.packets), ("bytes", t.bytes), ("tcp_flows", t.tcpFlows), ("udp_flows", t.udpFlows),
        ("devices", t.devices.count), ("vlan", t.vlanPackets), ("qinq", t.qinqPackets), ("mpls", t.mplsPackets),
        ("pppoe", t.pppoePackets), ("gtpu", t.gtpuPackets), ("ipv4", t.ipv4Packets), ("ipv6", t.ipv6Packets),
        ("fragments", t.fragmentPackets), ("reassembled", t.reassembledDatagrams), ("tcp", t.tcpPackets),
        ("udp", t.udpPackets), ("arp", t.arpPackets), ("truncated", t.truncatedPackets),
    ]
    return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
}
