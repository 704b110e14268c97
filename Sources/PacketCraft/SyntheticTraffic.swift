import Decode

/// A reproducible mix of mobile-edge traffic, with the counts a correct decoder must find in it.
///
/// Sessions are generated one after another (each a complete TCP or UDP exchange) from a seeded generator: plain
/// Ethernet HTTP, 802.1Q and QinQ tagged HTTP, MPLS, GTP-U (PDU session container) with inner IPv4 and IPv6,
/// IPv6 TLS, IPv4/IPv6 QUIC-like UDP, fragmented UDP, PPPoE, ARP, and a few deliberately truncated frames.
public struct SyntheticTraffic {
    /// What was generated: the ground truth for the decoder's counters.
    public struct Truth: Sendable, Equatable {
        public var packets = 0
        public var bytes = 0
        public var tcpFlows = 0
        public var udpFlows = 0
        public var devices = Set<IPAddress>()
        public var vlanPackets = 0
        public var qinqPackets = 0
        public var mplsPackets = 0
        public var pppoePackets = 0
        public var gtpuPackets = 0
        public var ipv4Packets = 0
        public var ipv6Packets = 0
        public var fragmentPackets = 0
        public var reassembledDatagrams = 0
        public var tcpPackets = 0
        public var udpPackets = 0
        public var arpPackets = 0
        public var truncatedPackets = 0
        public init() {}
    }

    public private(set) var truth = Truth()
    private var rng: SplitMix64
    private var timestamp: UInt64
    private var session = 0
    private var portCursor = [UInt32](repeating: 0, count: 2000)

    /// A generator seeded with `seed`, starting at `startNanoseconds` (capture time).
    public init(seed: UInt64 = 0x5747_4154_4150, startNanoseconds: UInt64 = 1_764_000_000_000_000_000) {
        rng = SplitMix64(seed: seed)
        timestamp = startNanoseconds
    }

    /// Generates sessions until at least `packets` frames were emitted; `emit` gets each Ethernet frame and its
    /// timestamp in nanoseconds.
    public mutating func generate(packets: Int, _ emit: (_ frame: [UInt8], _ timestampNanoseconds: UInt64) throws -> Void)
        rethrows
    {
        while truth.packets < packets {
            for frame in nextSession() {
                timestamp &+= 2_000 + rng.next() % 20_000
                truth.packets += 1
                truth.bytes += frame.count
                try emit(frame, timestamp)
            }
        }
    }

    private struct Shape {
        var outer: [Layer]
        var vlan = false, qinq = false, mpls = false, pppoe = false, gtpu = false, outerIPv4 = false
    }

    private mutating func nextSession() -> [[UInt8]] {
        session += 1
        let kind = rng.next() % 100
        let deviceIndex = UInt32(rng.next() % 2000)
        let device4 = IPAddress(ipv4: 0x0a2d_0000 | deviceIndex)  // 10.45.x.x
        let device6 = IPAddress(high: 0x2001_0db8_0045_0000, low: UInt64(deviceIndex) + 1, isIPv6: true)
        let server4 = IPAddress(ipv4: 0xc633_6400 | UInt32(rng.next() % 200 + 1))  // 198.51.100.x
        let server6 = IPAddress(high: 0x2001_0db8_0000_00ed, low: UInt64(rng.next() % 200 + 1), isIPv6: true)
        // A fresh source port per device, so no two sessions share a 5-tuple (the flow count is exact).
        portCursor[Int(deviceIndex)] &+= 1
        let clientPort = UInt16(32768 + Int(portCursor[Int(deviceIndex)]) % 28000)
        var shape = Shape(outer: [.ethernet()])
        switch kind {
        case 0..<30: break
        case 30..<42:
            shape.outer.append(.vlan(id: UInt16(100 + deviceIndex % 8))); shape.vlan = true
        case 42..<48:
            shape.outer += [.vlan(id: 200, tpid: 0x88a8), .vlan(id: UInt16(300 + deviceIndex % 4))]
            shape.vlan = true; shape.qinq = true
        case 48..<52:
            shape.outer += [.mpls(label: 1000 + deviceIndex % 16), .mpls(label: 17)]; shape.mpls = true
        case 52..<55:
            shape.outer.append(.pppoeSession(id: UInt16(deviceIndex))); shape.pppoe = true
        case 55..<75:
            let enb = IPAddress(ipv4: 0xac10_0001 | (deviceIndex % 4) << 8)  // 172.16.x.1
            shape.outer += [.vlan(id: 10), .ipv4(src: enb, dst: IPAddress(ipv4: 0xac10_ff01)),
                            .udp(src: 2152, dst: 2152),
                            .gtpu(teid: 0x1000_0000 | deviceIndex, sequence: UInt16(session & 0xffff),
                                  extensions: [.pduSessionContainer(qfi: 9, uplink: true)])]
            shape.vlan = true; shape.gtpu = true; shape.outerIPv4 = true
        default: break
        }
        let isIPv6 = kind >= 75 && kind < 85 || (shape.gtpu && kind % 5 == 0)
        let client = isIPv6 ? device6 : device4
        let server = isIPv6 ? server6 : server4
        truth.devices.insert(client)
        let frames: [[UInt8]]
        let roll = rng.next() % 100
        if roll < 70 {
            frames = tcpSession(shape: shape, client: client, server: server, clientPort: clientPort,
                                serverPort: kind % 3 == 0 ? 443 : 80)
        } else if roll < 97 {
            frames = udpSession(shape: shape, client: client, server: server, clientPort: clientPort)
        } else {
            frames = fragmentedUDP(shape: shape, client: client, server: server, clientPort: clientPort)
        }
        var out = frames
        if session % 97 == 0 {
            out.append(PacketBuilder.build([.ethernet(dst: .broadcast),
                                            .arp(senderIP: IPAddress(ipv4: 0x0a2d_0001), targetIP: device4)]))
            truth.arpPackets += 1
        }
        if session % 211 == 0, let victim = frames.first {
            // A frame cut inside its headers, as a broken capture would have it: counted, never decoded.
            out.append(Array(victim.prefix(min(victim.count - 1, 14 + 10))))
            truth.truncatedPackets += 1
            // The first 24 bytes still hold the Ethernet header and the first tag or label (or PPPoE header).
            if shape.vlan { truth.vlanPackets += 1 }
            if shape.qinq { truth.qinqPackets += 1 }
            if shape.mpls { truth.mplsPackets += 1 }
            if shape.pppoe { truth.pppoePackets += 1 }
        }
        return out
    }

    /// The layers for one direction, with the inner addresses of the session.
    private func wrap(_ shape: Shape, src: IPAddress, dst: IPAddress, _ inner: [Layer]) -> [Layer] {
        let ip: Layer = src.isIPv6 ? .ipv6(src: src, dst: dst) : .ipv4(src: src, dst: dst)
        return shape.outer + [ip] + inner
    }

    private mutating func count(_ shape: Shape, inner6: Bool, tcp: Bool, packets n: Int) {
        if shape.vlan { truth.vlanPackets += n }
        if shape.qinq { truth.qinqPackets += n }
        if shape.mpls { truth.mplsPackets += n }
        if shape.pppoe { truth.pppoePackets += n }
        if shape.gtpu { truth.gtpuPackets += n }
        if inner6 { truth.ipv6Packets += n } else { truth.ipv4Packets += n }
        if shape.outerIPv4 && inner6 { truth.ipv4Packets += n }
        if tcp { truth.tcpPackets += n } else { truth.udpPackets += n }
        // The outer UDP of GTP-U (packets are counted per layer seen, so inner UDP already counted it).
        if shape.gtpu && tcp { truth.udpPackets += n }
    }

    private mutating func tcpSession(shape: Shape, client: IPAddress, server: IPAddress, clientPort: UInt16,
                                     serverPort: UInt16) -> [[UInt8]]
    {
        var c = UInt32(truncatingIfNeeded: rng.next()), s = UInt32(truncatingIfNeeded: rng.next())
        let host = "cdn\(rng.next() % 50).example.net"
        let path = "/objects/\(rng.next() % 100_000).jpg"
        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: statetap-synthetic\r\n\r\n".utf8)
        let body = [UInt8](repeating: 0x41, count: Int(rng.next() % 900))
        let response = Array(("HTTP/1.1 200 OK\r\nContent-Length: \(body.count)\r\nCache-Control: max-age=3600\r\n"
            + "Via: 1.1 edge-a\r\nX-Cache: HIT\r\n\r\n").utf8) + body
        func up(_ flags: UInt8, _ payload: [UInt8] = []) -> [UInt8] {
            PacketBuilder.build(wrap(shape, src: client, dst: server,
                                     [.tcp(src: clientPort, dst: serverPort, seq: c, ack: s, flags: flags,
                                           options: flags & TCPFlags.syn != 0 ? TCPOption.mss(1460) : [])]
                                     + (payload.isEmpty ? [] : [.payload(payload)])))
        }
        func down(_ flags: UInt8, _ payload: [UInt8] = []) -> [UInt8] {
            PacketBuilder.build(wrap(shape, src: server, dst: client,
                                     [.tcp(src: serverPort, dst: clientPort, seq: s, ack: c, flags: flags)]
                                     + (payload.isEmpty ? [] : [.payload(payload)])))
        }
        var frames: [[UInt8]] = []
        frames.append(up(TCPFlags.syn)); c &+= 1
        frames.append(down(TCPFlags.synAck)); s &+= 1
        frames.append(up(TCPFlags.ack))
        frames.append(up(TCPFlags.pshAck, request)); c &+= UInt32(request.count)
        frames.append(down(TCPFlags.pshAck, response)); s &+= UInt32(response.count)
        frames.append(up(TCPFlags.ack))
        frames.append(up(TCPFlags.finAck)); c &+= 1
        frames.append(down(TCPFlags.finAck)); s &+= 1
        frames.append(up(TCPFlags.ack))
        truth.tcpFlows += 1
        count(shape, inner6: client.isIPv6, tcp: true, packets: frames.count)
        return frames
    }

    private mutating func udpSession(shape: Shape, client: IPAddress, server: IPAddress, clientPort: UInt16)
        -> [[UInt8]]
    {
        let n = 2 + Int(rng.next() % 6)
        var frames: [[UInt8]] = []
        for i in 0..<n {
            let size = 40 + Int(rng.next() % 1100)
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }
            let toServer = i % 2 == 0
            frames.append(PacketBuilder.build(wrap(
                shape, src: toServer ? client : server, dst: toServer ? server : client,
                [.udp(src: toServer ? clientPort : 443, dst: toServer ? 443 : clientPort), .payload(payload)])))
        }
        truth.udpFlows += 1
        count(shape, inner6: client.isIPv6, tcp: false, packets: n)
        return frames
    }

    private mutating func fragmentedUDP(shape: Shape, client: IPAddress, server: IPAddress, clientPort: UInt16)
        -> [[UInt8]]
    {
        // Fragmented datagrams are sent on plain or VLAN-tagged Ethernet (not inside tunnels).
        let plain = Shape(outer: shape.vlan && !shape.gtpu && !shape.qinq ? shape.outer : [.ethernet()],
                          vlan: shape.vlan && !shape.gtpu && !shape.qinq)
        let payload = (0..<3000).map { UInt8(truncatingIfNeeded: $0) }
        let inner: [Layer] = [.udp(src: clientPort, dst: 5353), .payload(payload)]
        let id = UInt16(truncatingIfNeeded: rng.next())
        let frames = client.isIPv6
            ? PacketBuilder.ipv6Fragments(inner, src: client, dst: server, id: UInt32(id), fragmentSize: 1232,
                                          outer: plain.outer)
            : PacketBuilder.ipv4Fragments(inner, src: client, dst: server, id: id, fragmentSize: 1480,
                                          outer: plain.outer)
        truth.udpFlows += 1
        truth.fragmentPackets += frames.count
        truth.reassembledDatagrams += 1
        if plain.vlan { truth.vlanPackets += frames.count }
        if client.isIPv6 { truth.ipv6Packets += frames.count } else { truth.ipv4Packets += frames.count }
        truth.udpPackets += 1  // the UDP header is decoded once, from the reassembled datagram
        return frames
    }
}

/// SplitMix64: a tiny, fast, seedable generator, so generated traffic is the same on every machine.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
