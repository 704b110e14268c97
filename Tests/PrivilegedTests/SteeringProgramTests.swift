import Decode
import Foundation
import PacketCraft
import Testing
import XDPPrograms

/// Loading BPF programs needs root (CAP_BPF, CAP_NET_ADMIN). Without it these tests are skipped, and say so.
let isRoot: Bool = {
    let root = geteuid() == 0
    if !root {
        FileHandle.standardError.write(Data("""
            WARNING: PrivilegedTests SKIPPED: not running as root, so the XDP program cannot be loaded. \
            Run the tests as root (CI does).\n
            """.utf8))
    }
    return root
}()

/// XDP actions (linux/bpf.h).
let xdpPass: UInt32 = 2

/// How the steering program must count a frame (no AF_XDP socket is bound during BPF_PROG_RUN, so frames of
/// interest are counted `noSocket` and passed).
enum Steering: String, Sendable { case ofInterest, passed, malformed }

struct SteeringCase: Sendable, CustomTestStringConvertible {
    let name: String
    let frame: [UInt8]
    let expected: Steering
    var testDescription: String { name }
}

let a4 = IPAddress("10.45.0.1")!, b4 = IPAddress("198.51.100.1")!
let a6 = IPAddress("2001:db8::1")!, b6 = IPAddress("2001:db8::2")!
let http: [Layer] = [.tcp(src: 40000, dst: 80), .payload(Array("GET / HTTP/1.1\r\n\r\n".utf8))]

let steeringCases: [SteeringCase] = {
    var c: [SteeringCase] = []
    func add(_ name: String, _ layers: [Layer], _ e: Steering) {
        c.append(SteeringCase(name: name, frame: PacketBuilder.build(layers), expected: e))
    }
    add("IPv4 TCP 80 (HTTP)", [.ethernet(), .ipv4(src: a4, dst: b4)] + http, .ofInterest)
    add("IPv4 TCP from port 80 (response)", [.ethernet(), .ipv4(src: b4, dst: a4), .tcp(src: 80, dst: 40000)],
        .ofInterest)
    add("IPv4 TCP 8080", [.ethernet(), .ipv4(src: a4, dst: b4), .tcp(src: 40000, dst: 8080)], .ofInterest)
    add("IPv4 TCP 443 (TLS)", [.ethernet(), .ipv4(src: a4, dst: b4), .tcp(src: 40000, dst: 443)], .ofInterest)
    add("IPv4 UDP 443 (QUIC)", [.ethernet(), .ipv4(src: a4, dst: b4), .udp(src: 40000, dst: 443), .payload([1])],
        .ofInterest)
    add("IPv4 TCP 22 (management)", [.ethernet(), .ipv4(src: a4, dst: b4), .tcp(src: 40000, dst: 22)], .passed)
    add("IPv4 UDP 53 (DNS)", [.ethernet(), .ipv4(src: a4, dst: b4), .udp(src: 40000, dst: 53)], .passed)
    add("IPv4 with options, TCP 443", [.ethernet(), .ipv4(src: a4, dst: b4, options: [1, 1, 1, 1]),
                                      .tcp(src: 40000, dst: 443)], .ofInterest)
    add("802.1Q IPv4 TCP 80", [.ethernet(), .vlan(id: 100), .ipv4(src: a4, dst: b4)] + http, .ofInterest)
    add("QinQ IPv4 TCP 80", [.ethernet(), .vlan(id: 10, tpid: 0x88a8), .vlan(id: 20), .ipv4(src: a4, dst: b4)]
        + http, .ofInterest)
    add("QinQ IPv4 TCP 22", [.ethernet(), .vlan(id: 10, tpid: 0x88a8), .vlan(id: 20), .ipv4(src: a4, dst: b4),
                             .tcp(src: 40000, dst: 22)], .passed)
    add("IPv6 TCP 443", [.ethernet(), .ipv6(src: a6, dst: b6), .tcp(src: 40000, dst: 443)], .ofInterest)
    add("IPv6 hop-by-hop + destination options, UDP 443",
        [.ethernet(), .ipv6(src: a6, dst: b6), .ipv6Extension(type: 0, body: []), .ipv6Extension(type: 60, body: []),
         .udp(src: 40000, dst: 443)], .ofInterest)
    add("IPv6 UDP 123 (NTP)", [.ethernet(), .ipv6(src: a6, dst: b6), .udp(src: 123, dst: 123)], .passed)
    add("IPv6 ICMPv6 (neighbour discovery)", [.ethernet(), .ipv6(src: a6, dst: b6), .icmp(type: 135)], .passed)
    add("GTP-U with inner TCP 22 (the tunnel is of interest)",
        [.ethernet(), .ipv4(src: a4, dst: b4), .udp(src: 2152, dst: 2152), .gtpu(teid: 7),
         .ipv4(src: a4, dst: b4), .tcp(src: 40000, dst: 22)], .ofInterest)
    add("UDP 2152 that is not GTP-U", [.ethernet(), .ipv4(src: a4, dst: b4), .udp(src: 2152, dst: 2152),
                                       .payload([0x00, 0xff, 0, 4, 0, 0, 0, 1, 1, 2, 3, 4])], .passed)
    add("ARP", [.ethernet(dst: .broadcast), .arp(senderIP: a4, targetIP: b4)], .passed)
    add("MPLS (left to the kernel)", [.ethernet(), .mpls(label: 100), .ipv4(src: a4, dst: b4)] + http, .passed)
    for frame in PacketBuilder.ipv4Fragments([.udp(src: 40000, dst: 53), .payload([UInt8](repeating: 1, count: 3000))],
                                             src: a4, dst: b4, id: 9, fragmentSize: 1480) {
        c.append(SteeringCase(name: "IPv4 fragment \(c.count)", frame: frame, expected: .ofInterest))
    }
    c.append(SteeringCase(name: "IPv6 fragment", frame: PacketBuilder.ipv6Fragments(
        [.udp(src: 40000, dst: 53), .payload([UInt8](repeating: 1, count: 3000))], src: a6, dst: b6, id: 9,
        fragmentSize: 1232)[1], expected: .ofInterest))
    let tcp80 = PacketBuilder.build([.ethernet(), .ipv4(src: a4, dst: b4)] + http)
    c.append(SteeringCase(name: "TCP header cut", frame: Array(tcp80.prefix(14 + 20 + 10)), expected: .malformed))
    c.append(SteeringCase(name: "IPv4 header cut", frame: Array(tcp80.prefix(14 + 10)), expected: .malformed))
    // (BPF_PROG_RUN refuses frames shorter than an Ethernet header, as no NIC delivers them.)
    let tagged = PacketBuilder.build([.ethernet(), .vlan(id: 5), .ipv4(src: a4, dst: b4)] + http)
    c.append(SteeringCase(name: "VLAN tag cut", frame: Array(tagged.prefix(16)), expected: .malformed))
    return c
}()

@Suite("XDP steering program (BPF_PROG_RUN)", .serialized, .enabled(if: isRoot, "needs root to load BPF programs"))
struct SteeringProgramTests {
    @Test("each frame is steered or passed as configured, and counted exactly once", arguments: steeringCases)
    func steering(_ c: SteeringCase) throws {
        let program = try SteeringProgram()
        let action = try program.run(frame: c.frame)
        #expect(action == xdpPass, "no socket is bound: every frame ends in XDP_PASS")
        let counters = try program.counters()
        var expected = SteeringCounters()
        switch c.expected {
        case .ofInterest: expected.noSocket = 1
        case .passed: expected.passed = 1
        case .malformed: expected.malformed = 1
        }
        #expect(counters == expected)
    }

    @Test("configuration: other ports, --steer all, GTP-U and fragments off")
    func configuration() throws {
        var config = SteeringConfiguration()
        config.tcpPorts = [22]
        config.udpPorts = []
        config.steerGTPU = false
        config.steerFragments = false
        let p = try SteeringProgram(configuration: config)
        let expectations: [(String, Bool)] = [
            ("IPv4 TCP 22 (management)", true), ("IPv4 TCP 80 (HTTP)", false), ("IPv4 UDP 443 (QUIC)", false),
            ("GTP-U with inner TCP 22 (the tunnel is of interest)", false), ("IPv4 fragment 19", false),
        ]
        for (name, ofInterest) in expectations {
            let frame = try #require(steeringCases.first { $0.name == name }, "no case \(name)").frame
            let before = try p.counters().noSocket
            _ = try p.run(frame: frame)
            #expect(try p.counters().noSocket - before == (ofInterest ? 1 : 0), "\(name)")
        }
        var all = SteeringConfiguration()
        all.steerAll = true
        let q = try SteeringProgram(configuration: all)
        for c in steeringCases { _ = try q.run(frame: c.frame) }
        let counters = try q.counters()
        // Everything with an Ethernet header is of interest, cut frames included (the pipeline counts them).
        #expect(counters.passed == 0 && counters.malformed == 0)
        #expect(counters.noSocket == UInt64(steeringCases.count))
    }

    @Test("more ports than the program holds are refused with a message")
    func tooManyPorts() {
        var config = SteeringConfiguration()
        config.tcpPorts = Array(1...9)
        #expect(throws: BPFError.self) { try SteeringProgram(configuration: config) }
    }
}
