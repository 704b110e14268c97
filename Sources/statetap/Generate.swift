import Capture
import ArgumentParser
import Decode
import Foundation
import PacketCraft

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a capture of synthetic mobile-edge traffic (for demos, tests and benchmarks).",
        discussion: """
            --mix mixed (the default): plain, 802.1Q and QinQ tagged, MPLS and PPPoE Ethernet; GTP-U with a PDU \
            session container carrying IPv4 and IPv6; TCP HTTP sessions with handshake and teardown; UDP 443 \
            exchanges; fragmented UDP datagrams; ARP; and a few frames cut inside their headers.
            --mix http: keep-alive HTTP/1.1 connections (plain Ethernet, 802.1Q, GTP-U; IPv4 and IPv6), 2 to 8 \
            requests each with browser headers, CDN responses (Cache-Control, ETag, Via, X-Cache, Age...) with \
            bodies over full-size segments, some chunked, some 304 revalidations.
            The same seed and mix give the same file. --truth counts HTTP requests (one web_link event each).
            """)

    @Argument(help: "Output file.")
    var output: String

    @Option(help: "Packets to write (at least; the last session is completed).")
    var packets: Int = 100_000

    @Option(help: "File format: pcap or pcapng.")
    var format: CaptureFormat = .pcap

    @Option(help: "Seed of the traffic generator.")
    var seed: UInt64 = 0x5747_4154_4150

    @Option(help: "Traffic mix: mixed (every encapsulation, short sessions) or http (keep-alive HTTP/1.1).")
    var mix: TrafficMix = .mixed

    @Flag(help: "Print the generated ground truth (what a correct decoder finds) as JSON.")
    var truth = false

    func validate() throws {
        guard packets > 0 else { throw ValidationError("--packets must be at least 1") }
    }

    func run() throws {
        let t = try writeSyntheticCapture(path: output, packets: packets, format: format, seed: seed, mix: mix.mix)
        FileHandle.standardError.write(Data("wrote \(t.packets) packets (\(t.bytes) bytes) to \(output)\n".utf8))
        if truth { print(truthJSON(t)) }
    }
}

enum CaptureFormat: String, ExpressibleByArgument, CaseIterable {
    case pcap, pcapng
}

/// `--mix`: the command line's name for `SyntheticTraffic.Mix`.
enum TrafficMix: String, ExpressibleByArgument, CaseIterable {
    case mixed, http

    var mix: SyntheticTraffic.Mix {
        switch self {
        case .mixed: .mixed
        case .http: .http
        }
    }
}

/// Writes a synthetic capture and returns its ground truth.
func writeSyntheticCapture(path: String, packets: Int, format: CaptureFormat, seed: UInt64,
                           mix: SyntheticTraffic.Mix = .mixed) throws -> SyntheticTraffic.Truth
{
    var traffic = SyntheticTraffic(seed: seed, mix: mix)
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
        ("http_requests", t.httpRequests), ("http_responses", t.httpResponses),
        ("http_chunked_responses", t.httpChunkedResponses),
    ]
    return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
}
