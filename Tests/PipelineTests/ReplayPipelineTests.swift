import Capture
import Decode
import Flows
import Foundation
import PacketCraft
import Testing
@testable import Pipeline

/// A temporary file path removed when the test is done with it.
final class TempFile {
    let path: String
    init(_ suffix: String) {
        path = NSTemporaryDirectory() + "statetap-test-\(UUID().uuidString)\(suffix)"
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

func writeSynthetic(_ file: TempFile, packets: Int, pcapng: Bool = false, seed: UInt64 = 42) throws
    -> SyntheticTraffic.Truth
{
    var traffic = SyntheticTraffic(seed: seed)
    if pcapng {
        let w = try PcapNGWriter(path: file.path, linkType: .ethernet)
        try traffic.generate(packets: packets) { try w.write(packet: $0, timestampNanoseconds: $1) }
        try w.close()
    } else {
        let w = try PcapWriter(path: file.path, linkType: .ethernet)
        try traffic.generate(packets: packets) { try w.write(packet: $0, timestampNanoseconds: $1) }
        try w.close()
    }
    return traffic.truth
}

@Suite("Replay pipeline")
struct ReplayPipelineTests {
    @Test("a generated capture replays to exactly its ground truth",
          arguments: [(workers: 1, pcapng: false, ring: 4096, batch: 64), (workers: 2, pcapng: false, ring: 64, batch: 8),
                      (workers: 3, pcapng: true, ring: 16, batch: 1)])
    func groundTruth(setup: (workers: Int, pcapng: Bool, ring: Int, batch: Int)) throws {
        let file = TempFile(setup.pcapng ? ".pcapng" : ".pcap")
        let truth = try writeSynthetic(file, packets: 30_000, pcapng: setup.pcapng)
        var c = PipelineConfiguration()
        c.workers = setup.workers
        c.ringSize = setup.ring
        c.batchSize = setup.batch
        c.frameCount = 512  // small pool: the source must wait for returned frames many times
        let s = try ReplayPipeline(configuration: c).run(files: [file.path])
        let k = s.counters
        #expect(Int(k.packets) == truth.packets)
        #expect(Int(k.bytes) == truth.bytes)
        #expect(Int(s.flowsTCP) == truth.tcpFlows)
        #expect(Int(s.flowsUDP) == truth.udpFlows)
        #expect(s.devices == truth.devices.count)
        #expect(Int(k.packets(with: .vlan)) == truth.vlanPackets)
        #expect(Int(k.packets(with: .qinq)) == truth.qinqPackets)
        #expect(Int(k.packets(with: .mpls)) == truth.mplsPackets)
        #expect(Int(k.packets(with: .pppoe)) == truth.pppoePackets)
        #expect(Int(k.packets(with: .gtpu)) == truth.gtpuPackets)
        #expect(Int(k.packets(with: .ipv4)) == truth.ipv4Packets)
        #expect(Int(k.packets(with: .ipv6)) == truth.ipv6Packets)
        #expect(Int(k.packets(with: .fragment)) == truth.fragmentPackets)
        #expect(Int(k.reassembly.datagramsCompleted) == truth.reassembledDatagrams)
        #expect(Int(k.packets(with: .tcp)) == truth.tcpPackets)
        #expect(Int(k.packets(with: .udp)) == truth.udpPackets)
        #expect(Int(k.notIP) == truth.arpPackets)
        #expect(Int(k.errors.reduce(0, +)) == truth.truncatedPackets)
        #expect(s.ringFullDrops == 0)
        #expect(s.readErrors.isEmpty)
        #expect(s.framesNotReturned == 0)
        if setup.ring <= 64 {
            #expect(s.ringFullEvents > 0, "a small ring fed from a file must fill and make the reader wait")
        }
    }

    @Test("with the live-capture policy a full ring drops and counts, and nothing goes missing unaccounted")
    func dropPolicy() throws {
        let file = TempFile(".pcap")
        let truth = try writeSynthetic(file, packets: 50_000)
        var c = PipelineConfiguration()
        c.onFullRing = .drop
        c.ringSize = 2
        c.batchSize = 1
        let s = try ReplayPipeline(configuration: c).run(files: [file.path])
        #expect(Int(s.counters.packets + s.ringFullDrops) == truth.packets)
        #expect(s.ringFullDrops > 0, "a 2-slot ring fed from a file should overflow at least once")
        #expect(s.ringFullEvents >= s.ringFullDrops)
        #expect(s.framesNotReturned == 0)
    }

    @Test("several files replay in order as one run")
    func severalFiles() throws {
        let a = TempFile(".pcap"), b = TempFile(".pcapng")
        let ta = try writeSynthetic(a, packets: 3000, seed: 1)
        let tb = try writeSynthetic(b, packets: 2000, pcapng: true, seed: 2)
        let s = try ReplayPipeline(configuration: PipelineConfiguration()).run(files: [a.path, b.path])
        #expect(Int(s.counters.packets) == ta.packets + tb.packets)
        #expect(s.files == [a.path, b.path])
    }

    @Test("Linux cooked (SLL, SLL2) and raw IP captures decode like Ethernet ones",
          arguments: [LinkType.linuxSLL, .linuxSLL2, .raw])
    func linkTypes(linkType: LinkType) throws {
        let file = TempFile(".pcap")
        let w = try PcapWriter(path: file.path, linkType: linkType)
        let src = IPAddress("10.45.0.1")!, dst = IPAddress("198.51.100.1")!
        for i in 0..<10 {
            let l3 = PacketBuilder.build([.ipv4(src: src, dst: dst), .tcp(src: 40000, dst: 80, seq: UInt32(i),
                                                                           flags: i == 0 ? TCPFlags.syn : TCPFlags.ack)])
            let frame: [UInt8]
            switch linkType {
            case .linuxSLL: frame = PacketBuilder.sllHeader(protocol: 0x0800) + l3
            case .linuxSLL2: frame = PacketBuilder.sll2Header(protocol: 0x0800) + l3
            default: frame = l3
            }
            try w.write(packet: frame, timestampNanoseconds: 1_000_000_000 + UInt64(i) * 1000)
        }
        try w.close()
        let s = try ReplayPipeline(configuration: PipelineConfiguration()).run(files: [file.path])
        #expect(s.counters.packets == 10)
        #expect(s.counters.packets(with: .tcp) == 10)
        #expect(s.flowsTCP == 1)
        #expect(s.devices == 1)
        #expect(s.counters.errors.reduce(0, +) == 0)
        #expect(abs(s.captureDurationSeconds - 9e-6) < 1e-9)  // nanosecond timestamps survive the round trip
    }

    @Test("flows are reported to the sink with their device and counts")
    func flowRecords() throws {
        let file = TempFile(".pcap")
        let truth = try writeSynthetic(file, packets: 2000)
        let seen = Collected()
        var c = PipelineConfiguration()
        c.workers = 2
        let s = try ReplayPipeline(configuration: c).run(files: [file.path], onFlow: { seen.add($0) })
        let records = seen.all
        #expect(records.count == Int(s.flows))
        #expect(Set(records.map(\.device)) == truth.devices)
        #expect(records.reduce(0) { $0 + Int($1.packets) } == truth.packets - truth.arpPackets - truth.truncatedPackets
                - truth.fragmentPackets + truth.reassembledDatagrams)
    }

    @Test("a flood of new devices keeps at most --max-devices totals, evicts the least recently seen, counts it")
    func deviceBound() throws {
        let file = TempFile(".pcap")
        let w = try PcapWriter(path: file.path, linkType: .ethernet)
        let server = IPAddress("198.51.100.1")!
        // 5,000 SYNs from distinct sources, 1 ms apart; a regular device comes back every 100th packet.
        let regular = IPAddress("10.99.0.1")!
        for i in 0..<5000 {
            let source = i % 100 == 0 ? regular : IPAddress(ipv4: 0x0a00_0000 | UInt32(i + 2))
            let f = PacketBuilder.build([.ethernet(), .ipv4(src: source, dst: server),
                                         .tcp(src: UInt16(1024 + i % 60000), dst: 80, seq: 1, flags: TCPFlags.syn)])
            try w.write(packet: f, timestampNanoseconds: 1_700_000_000_000_000_000 + UInt64(i) * 1_000_000)
        }
        try w.close()
        var c = PipelineConfiguration()
        c.maxDevices = 320
        c.flowIdleTimeoutNanoseconds = 50_000_000  // flows end as the capture goes on, in time order
        let s = try ReplayPipeline(configuration: c).run(files: [file.path])
        let distinct = 5000 - 49  // the regular device's 50 SYNs are one device
        #expect(s.devices <= 320 && s.devices > 320 - 320 / 16 - 1)
        #expect(s.devices + Int(s.devicesEvicted) == distinct, "every device is kept or counted as evicted")
        #expect(s.deviceTotals[regular] != nil, "a device seen all along is not the least recently seen")
        #expect(s.deviceTotals[IPAddress(ipv4: 0x0a00_0000 | UInt32(4999 + 2))] != nil, "the newest device is kept")
        #expect(s.deviceTotals[IPAddress(ipv4: 0x0a00_0000 | UInt32(1 + 2))] == nil, "an early one-off device was evicted")
        var bad = PipelineConfiguration()
        bad.maxDevices = 0
        #expect(throws: ConfigurationError.self) { try bad.validate() }
    }

    @Test("a missing file and an unsupported link type fail before the run, saying why")
    func badFiles() throws {
        #expect(throws: (any Error).self) {
            try ReplayPipeline(configuration: PipelineConfiguration()).run(files: ["/nonexistent/x.pcap"])
        }
        let file = TempFile(".pcap")
        let w = try PcapWriter(path: file.path, linkType: .ethernet)
        try w.close()
        // Patch the link type field of the pcap header (offset 20) to 147 (LINKTYPE_USER0).
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file.path)))
        bytes[20] = 147; bytes[21] = 0; bytes[22] = 0; bytes[23] = 0
        try Data(bytes).write(to: URL(fileURLWithPath: file.path))
        do {
            _ = try ReplayPipeline(configuration: PipelineConfiguration()).run(files: [file.path])
            Issue.record("an unsupported link type was accepted")
        } catch {
            #expect("\(error)".contains("unsupported link type"))
        }
    }

    @Test("invalid configurations are refused with a message", arguments: [
        ("workers", 0), ("ringSize", 1000), ("batch", 0), ("batch", 100_000),
    ])
    func badConfiguration(field: String, value: Int) {
        var c = PipelineConfiguration()
        switch field {
        case "workers": c.workers = value
        case "ringSize": c.ringSize = value
        default: c.batchSize = value
        }
        #expect(throws: ConfigurationError.self) { try c.validate() }
    }
}

final class Collected: @unchecked Sendable {
    private var records: [FlowRecord] = []
    private let lock = NSLock()
    func add(_ r: FlowRecord) { lock.lock(); records.append(r); lock.unlock() }
    var all: [FlowRecord] { lock.lock(); defer { lock.unlock() }; return records }
}

@Suite("Sharding across workers")
struct ShardingTests {
    @Test("a tunnelled flow whose outer packets are sometimes fragmented stays one flow with any worker count",
          arguments: [1, 2, 3, 4])
    func fragmentedTunnelStaysOneFlow(workers: Int) throws {
        let file = TempFile(".pcap")
        let w = try PcapWriter(path: file.path, linkType: .ethernet)
        let outerA = IPAddress("192.0.2.1")!, outerB = IPAddress("192.0.2.2")!
        let ue = IPAddress("10.45.0.9")!, srv = IPAddress("198.51.100.7")!
        var ts: UInt64 = 1_000_000_000
        func put(_ f: [UInt8]) throws { ts += 1000; try w.write(packet: f, timestampNanoseconds: ts) }
        // Ten flows through the same GRE tunnel, so a wrong shard would split at least one of them.
        for port in UInt16(40000)..<40010 {
            try put(PacketBuilder.build([.ethernet(), .ipv4(src: outerA, dst: outerB), .gre(),
                                         .ipv4(src: ue, dst: srv), .tcp(src: port, dst: 80, flags: TCPFlags.syn)]))
            try put(PacketBuilder.build([.ethernet(), .ipv4(src: outerB, dst: outerA), .gre(),
                                         .ipv4(src: srv, dst: ue), .tcp(src: 80, dst: port, flags: TCPFlags.synAck)]))
            // A large segment whose outer IPv4 packet is fragmented, delivered out of order.
            let big = [UInt8](repeating: 0x61, count: 2500)
            let fragments = PacketBuilder.ipv4Fragments(
                [.gre(), .ipv4(src: ue, dst: srv), .tcp(src: port, dst: 80, flags: TCPFlags.pshAck), .payload(big)],
                src: outerA, dst: outerB, id: port, fragmentSize: 1000)
            for f in fragments.reversed() { try put(f) }
            try put(PacketBuilder.build([.ethernet(), .ipv4(src: outerB, dst: outerA), .gre(),
                                         .ipv4(src: srv, dst: ue), .tcp(src: 80, dst: port, flags: TCPFlags.ack)]))
        }
        try w.close()
        var c = PipelineConfiguration()
        c.workers = workers
        let s = try ReplayPipeline(configuration: c).run(files: [file.path])
        #expect(s.flowsTCP == 10)
        #expect(s.counters.reassembly.datagramsCompleted == 10)
        // Per flow: SYN, SYN-ACK and ACK carry GRE, and of the three fragments only the one that completes the
        // datagram shows the GRE header (the others hold only outer IPv4 and data): 4 frames a flow.
        #expect(s.counters.packets(with: .gre) == 40)
        #expect(s.counters.packets(with: .fragment) == 30)
        #expect(s.counters.errors.reduce(0, +) == 0)
        #expect(s.devices == 1)
    }
}
