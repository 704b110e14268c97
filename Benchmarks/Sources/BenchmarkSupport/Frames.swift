import Decode
import PacketCraft

/// The encapsulations the decode benchmarks cover, each one a kind of frame of the mixed set.
public enum FrameKind: String, CaseIterable, Sendable {
    /// Ethernet, IPv4, TCP.
    case ethernetTCP4 = "eth-ipv4-tcp"
    /// Ethernet, one 802.1Q tag, IPv4, TCP.
    case vlanTCP4 = "vlan-ipv4-tcp"
    /// Ethernet, 802.1ad + 802.1Q tags (QinQ), IPv4, TCP.
    case qinqTCP4 = "qinq-ipv4-tcp"
    /// Ethernet, IPv4, UDP 2152, GTP-U with a PDU session container extension header, inner IPv4 TCP or UDP.
    case gtpuInnerIPv4 = "gtpu-ext-inner-ipv4"
    /// The same with inner IPv6.
    case gtpuInnerIPv6 = "gtpu-ext-inner-ipv6"
    /// Ethernet, IPv6, TCP.
    case ethernetTCP6 = "eth-ipv6-tcp"
    /// Ethernet, IPv4, UDP (QUIC-like, port 443).
    case ethernetUDP4 = "eth-ipv4-udp"

    /// Share of the mixed set, in percent (the weights add up to 100).
    public var mixWeight: Int {
        switch self {
        case .ethernetTCP4: 25
        case .vlanTCP4: 15
        case .qinqTCP4: 10
        case .gtpuInnerIPv4: 20
        case .gtpuInnerIPv6: 10
        case .ethernetTCP6: 10
        case .ethernetUDP4: 10
        }
    }

    /// The layers every frame of this kind must decode to.
    public var expectedLayers: Layers {
        switch self {
        case .ethernetTCP4: [.ethernet, .ipv4, .tcp]
        case .vlanTCP4: [.ethernet, .vlan, .ipv4, .tcp]
        case .qinqTCP4: [.ethernet, .vlan, .qinq, .ipv4, .tcp]
        case .gtpuInnerIPv4: [.ethernet, .ipv4, .udp, .gtpu]
        case .gtpuInnerIPv6: [.ethernet, .ipv4, .ipv6, .udp, .gtpu]
        case .ethernetTCP6: [.ethernet, .ipv6, .tcp]
        case .ethernetUDP4: [.ethernet, .ipv4, .udp]
        }
    }
}

/// Builds reproducible frames with PacketCraft: a bounded population of devices, servers and ports, so the frames
/// fall into a few hundred bidirectional flows (both directions appear), as a flow table sees them.
public struct FrameFactory {
    private var rng: SplitMix64

    /// Devices (clients), servers and client ports per device: at most devices * portsPerDevice flows per kind.
    public let devices: UInt32
    public let servers: UInt32
    public let portsPerDevice: UInt16

    public init(seed: UInt64 = 0x5354_4154_4554_4150, devices: UInt32 = 128, servers: UInt32 = 16,
                portsPerDevice: UInt16 = 2)
    {
        rng = SplitMix64(seed: seed)
        self.devices = devices
        self.servers = servers
        self.portsPerDevice = portsPerDevice
    }

    /// `count` frames of the kinds in `kinds`, drawn with their mix weights, in random order.
    public mutating func frames(count: Int, kinds: [FrameKind] = FrameKind.allCases) -> [(FrameKind, [UInt8])] {
        precondition(!kinds.isEmpty)
        let total = kinds.reduce(0) { $0 + $1.mixWeight }
        return (0..<count).map { _ in
            var pick = Int(rng.next() % UInt64(total))
            var kind = kinds[0]
            for k in kinds {
                if pick < k.mixWeight { kind = k; break }
                pick -= k.mixWeight
            }
            return (kind, frame(kind))
        }
    }

    /// One frame of `kind`: a random flow of the population, a random direction, a random payload size.
    public mutating func frame(_ kind: FrameKind) -> [UInt8] {
        let device = UInt32(rng.next() % UInt64(devices))
        let server = UInt32(rng.next() % UInt64(servers))
        let clientPort = 40000 &+ UInt16(truncatingIfNeeded: device) &* portsPerDevice
            &+ UInt16(rng.next() % UInt64(portsPerDevice))
        let uplink = rng.next() & 1 == 0
        let inner6 = kind == .gtpuInnerIPv6 || kind == .ethernetTCP6
        let client = inner6
            ? IPAddress(high: 0x2001_0db8_0045_0000, low: UInt64(device) + 1, isIPv6: true)
            : IPAddress(ipv4: 0x0a2d_0000 | device)  // 10.45.x.x
        let serverAddress = inner6
            ? IPAddress(high: 0x2001_0db8_0000_00ed, low: UInt64(server) + 1, isIPv6: true)
            : IPAddress(ipv4: 0xc633_6400 | (server + 1))  // 198.51.100.x
        let (src, dst) = uplink ? (client, serverAddress) : (serverAddress, client)
        let ip: Layer = inner6 ? .ipv6(src: src, dst: dst) : .ipv4(src: src, dst: dst, id: UInt16(truncatingIfNeeded: rng.next()))

        var layers: [Layer] = [.ethernet()]
        switch kind {
        case .ethernetTCP4, .ethernetTCP6, .ethernetUDP4:
            break
        case .vlanTCP4:
            layers.append(.vlan(id: UInt16(100 + device % 8)))
        case .qinqTCP4:
            layers += [.vlan(id: 200, tpid: 0x88a8), .vlan(id: UInt16(300 + device % 4))]
        case .gtpuInnerIPv4, .gtpuInnerIPv6:
            let enb = IPAddress(ipv4: 0xac10_0001 | (device % 4) << 8)  // 172.16.x.1
            let upf = IPAddress(ipv4: 0xac10_ff01)
            layers += [
                uplink ? .ipv4(src: enb, dst: upf) : .ipv4(src: upf, dst: enb),
                .udp(src: 2152, dst: 2152),
                .gtpu(teid: (uplink ? 0x1000_0000 : 0x2000_0000) | device,
                      sequence: UInt16(truncatingIfNeeded: rng.next()),
                      extensions: [.pduSessionContainer(qfi: 9, uplink: uplink)]),
            ]
        }
        layers.append(ip)

        let udp = kind == .ethernetUDP4 || (kind.isGTPU && rng.next() % 3 == 0)
        if udp {
            let (sp, dp) = uplink ? (clientPort, UInt16(443)) : (UInt16(443), clientPort)
            layers += [.udp(src: sp, dst: dp), .payload(payload(16 + Int(rng.next() % 300)))]
        } else {
            let serverPort: UInt16 = server % 3 == 0 ? 80 : 443
            let (sp, dp) = uplink ? (clientPort, serverPort) : (serverPort, clientPort)
            // Mostly established traffic; a few handshakes with the usual options. No FIN or RST: the flows of
            // the set stay open, so a warmed flow table holds all of them.
            let roll = rng.next() % 100
            let flags: UInt8
            var options: [UInt8] = []
            if roll < 4 {
                flags = uplink ? TCPFlags.syn : TCPFlags.synAck
                options = TCPOption.mss(1460) + TCPOption.sackPermitted
                    + TCPOption.timestamps(value: UInt32(truncatingIfNeeded: rng.next()), echo: 0)
                    + TCPOption.nop + TCPOption.windowScale(7)
            } else if roll < 40 {
                flags = TCPFlags.ack
                options = TCPOption.nop + TCPOption.nop
                    + TCPOption.timestamps(value: UInt32(truncatingIfNeeded: rng.next()), echo: 1)
            } else {
                flags = TCPFlags.pshAck
            }
            layers.append(.tcp(src: sp, dst: dp, seq: UInt32(truncatingIfNeeded: rng.next()),
                               ack: UInt32(truncatingIfNeeded: rng.next()), flags: flags, options: options))
            if flags == TCPFlags.pshAck { layers.append(.payload(payload(1 + Int(rng.next() % 400)))) }
        }
        return PacketBuilder.build(layers)
    }

    private mutating func payload(_ n: Int) -> [UInt8] {
        let seed = UInt8(truncatingIfNeeded: rng.next())
        return (0..<n).map { UInt8(truncatingIfNeeded: $0) &+ seed }
    }
}

extension FrameKind {
    var isGTPU: Bool { self == .gtpuInnerIPv4 || self == .gtpuInnerIPv6 }
}

/// Frames copied once into one contiguous, 64-byte aligned buffer (each frame starts on a cache line, as frames
/// do in a frame pool), with their offsets and lengths in two more flat buffers: nothing to retain or bounds-check
/// in a measured loop.
public final class FrameSet: @unchecked Sendable {
    // @unchecked Sendable: immutable after init.

    /// Number of frames.
    public let count: Int
    /// Bytes of frame data (without the alignment padding).
    public let frameBytes: Int
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let offsets: UnsafeMutablePointer<Int>
    @usableFromInline let lengths: UnsafeMutablePointer<Int>
    /// The kind of each frame.
    public let kinds: [FrameKind]

    public init(_ frames: [(FrameKind, [UInt8])]) {
        count = frames.count
        kinds = frames.map(\.0)
        var total = 0
        for (_, f) in frames { total += (f.count + 63) & ~63 }
        let base = UnsafeMutableRawPointer.allocate(byteCount: max(total, 64), alignment: 64)
        let offsets = UnsafeMutablePointer<Int>.allocate(capacity: max(count, 1))
        let lengths = UnsafeMutablePointer<Int>.allocate(capacity: max(count, 1))
        var offset = 0
        var bytes = 0
        for (i, (_, f)) in frames.enumerated() {
            f.withUnsafeBytes { (base + offset).copyMemory(from: $0.baseAddress!, byteCount: f.count) }
            offsets[i] = offset
            lengths[i] = f.count
            offset += (f.count + 63) & ~63
            bytes += f.count
        }
        self.base = base
        self.offsets = offsets
        self.lengths = lengths
        frameBytes = bytes
    }

    deinit {
        base.deallocate()
        offsets.deallocate()
        lengths.deallocate()
    }

    /// Frame `i` (no bounds check: `i` must be in `0..<count`).
    @inlinable @inline(__always)
    public func frame(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + offsets[i], count: lengths[i])
    }

    /// Decodes every frame once and checks it decodes completely, to the layers its kind must have; returns a
    /// description of the first frame that does not (nil when all do).
    public func validate() -> String? {
        var p = DecodedPacket()
        for i in 0..<count {
            let outcome = PacketDecoder.decode(frame(i), linkType: .ethernet, into: &p)
            guard case .complete = outcome else { return "frame \(i) (\(kinds[i].rawValue)): \(outcome)" }
            guard p.layers.isSuperset(of: kinds[i].expectedLayers) else {
                return "frame \(i) (\(kinds[i].rawValue)): layers \(String(p.layers.rawValue, radix: 2))"
            }
        }
        return nil
    }
}
