import Decode

/// A reproducible mix of mobile-edge traffic, with the counts a correct decoder must find in it.
///
/// Sessions are generated one after another (each a complete TCP or UDP exchange) from a seeded generator.
/// `Mix.mixed`: plain Ethernet HTTP, 802.1Q and QinQ tagged HTTP, MPLS, GTP-U (PDU session container) with inner
/// IPv4 and IPv6, IPv6 TLS, IPv4/IPv6 QUIC-like UDP, fragmented UDP, PPPoE, ARP, and a few deliberately truncated
/// frames. `Mix.http`: keep-alive HTTP/1.1 connections as a browser and a CDN make them.
public struct SyntheticTraffic {
    /// What kind of traffic to generate.
    public enum Mix: String, Sendable, CaseIterable {
        /// Every encapsulation and protocol the decoder handles, one short session each (one HTTP request per TCP
        /// session). The default; a seed gives the same file as before this option existed.
        case mixed
        /// HTTP-heavy: keep-alive HTTP/1.1 connections carrying several requests each, browser request headers
        /// (User-Agent, Accept, Accept-Encoding, Cookie...), CDN response headers (Cache-Control, ETag, Via,
        /// X-Cache, Age...), bodies from under a hundred bytes to 250 KB over full-size segments, some
        /// chunked; plain Ethernet, 802.1Q and GTP-U, IPv4 and IPv6.
        case http
    }

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
        /// HTTP/1.x requests in the file: each is one web_link event.
        public var httpRequests = 0
        /// Final responses to them (every request is answered; 1xx interim responses are not generated).
        public var httpResponses = 0
        /// Of those, responses with a chunked body.
        public var httpChunkedResponses = 0
        public init() {}
    }

    public private(set) var truth = Truth()
    public let mix: Mix
    private var rng: SplitMix64
    private var timestamp: UInt64
    private var session = 0
    private var portCursor = [UInt32](repeating: 0, count: 2000)
    /// Body bytes for the HTTP mix: slices of a text-like block and of a random-looking block (cheaper than
    /// drawing every byte from `rng`). Empty for the mixed traffic.
    private let textBlock: [UInt8]
    private let binaryBlock: [UInt8]

    /// A generator of `mix` seeded with `seed`, starting at `startNanoseconds` (capture time).
    public init(seed: UInt64 = 0x5747_4154_4150, startNanoseconds: UInt64 = 1_764_000_000_000_000_000,
                mix: Mix = .mixed)
    {
        rng = SplitMix64(seed: seed)
        timestamp = startNanoseconds
        self.mix = mix
        if mix == .http {
            // Its own generator: the blocks do not move the session stream.
            var blocks = SplitMix64(seed: seed ^ 0x424f_4459)
            let words = ["the ", "edge ", "cache ", "<div class=\"item\">", "</div>\n", "function(", "){return ",
                         "var ", "price", ":", "\"", ",", "{", "}", "  ", "stock ", "color:#", "margin:0;"]
            var text: [UInt8] = []
            text.reserveCapacity(Self.blockSize + 32)
            while text.count < Self.blockSize { text += Array(words[Int(blocks.next() % UInt64(words.count))].utf8) }
            textBlock = Array(text.prefix(Self.blockSize))
            binaryBlock = (0..<Self.blockSize / 8).flatMap { _ in withUnsafeBytes(of: blocks.next()) { Array($0) } }
        } else {
            textBlock = []
            binaryBlock = []
        }
    }

    static let blockSize = 64 * 1024

    /// Generates sessions until at least `packets` frames were emitted; `emit` gets each Ethernet frame and its
    /// timestamp in nanoseconds.
    public mutating func generate(packets: Int, _ emit: (_ frame: [UInt8], _ timestampNanoseconds: UInt64) throws -> Void)
        rethrows
    {
        while truth.packets < packets {
            for frame in mix == .http ? nextHTTPSession() : nextSession() {
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

    /// A session's device (its index, IPv4 and IPv6 form), server and client port. A fresh source port per device, so no two
    /// sessions share a 5-tuple (the flow count is exact).
    private mutating func nextEndpoints() -> (UInt32, IPAddress, IPAddress, IPAddress, IPAddress, UInt16) {
        let deviceIndex = UInt32(rng.next() % 2000)
        let device4 = IPAddress(ipv4: 0x0a2d_0000 | deviceIndex)  // 10.45.x.x
        let device6 = IPAddress(high: 0x2001_0db8_0045_0000, low: UInt64(deviceIndex) + 1, isIPv6: true)
        let server4 = IPAddress(ipv4: 0xc633_6400 | UInt32(rng.next() % 200 + 1))  // 198.51.100.x
        let server6 = IPAddress(high: 0x2001_0db8_0000_00ed, low: UInt64(rng.next() % 200 + 1), isIPv6: true)
        portCursor[Int(deviceIndex)] &+= 1
        let clientPort = UInt16(32768 + Int(portCursor[Int(deviceIndex)]) % 28000)
        return (deviceIndex, device4, device6, server4, server6, clientPort)
    }

    private mutating func nextSession() -> [[UInt8]] {
        session += 1
        let kind = rng.next() % 100
        let (deviceIndex, device4, device6, server4, server6, clientPort) = nextEndpoints()
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
        truth.httpRequests += 1
        truth.httpResponses += 1
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

// MARK: - The HTTP-heavy mix

extension SyntheticTraffic {
    /// What a connection's host serves: it decides the requests made on the connection.
    private enum Site { case portal, images, statics, api, video }
    /// One request's object.
    private enum Resource { case page, script, style, image, font, json, manifest, segment }

    private static let userAgents = [
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "okhttp/4.12.0",
    ]
    private static let languages = ["en-GB,en;q=0.9", "de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7", "fr-FR,fr;q=0.9,en;q=0.8",
                                    "en-US,en;q=0.9", "es-ES,es;q=0.9"]
    private static let pops = ["fra-3", "ams-1", "lhr-7", "mad-2", "waw-1", "muc-4"]

    /// One keep-alive HTTP/1.1 connection: handshake, 2-8 request/response pairs, teardown.
    private mutating func nextHTTPSession() -> [[UInt8]] {
        session += 1
        let kind = rng.next() % 100
        let (deviceIndex, device4, device6, server4, server6, clientPort) = nextEndpoints()
        var shape = Shape(outer: [.ethernet()])
        switch kind {
        case 0..<50:
            break
        case 50..<65:
            shape.outer.append(.vlan(id: UInt16(100 + deviceIndex % 8))); shape.vlan = true
        default:  // the mobile user plane: GTP-U on the N3 / S1-U link
            let enb = IPAddress(ipv4: 0xac10_0001 | (deviceIndex % 4) << 8)  // 172.16.x.1
            shape.outer += [.vlan(id: 10), .ipv4(src: enb, dst: IPAddress(ipv4: 0xac10_ff01)),
                            .udp(src: 2152, dst: 2152),
                            .gtpu(teid: 0x1000_0000 | deviceIndex, sequence: UInt16(session & 0xffff),
                                  extensions: [.pduSessionContainer(qfi: 9, uplink: true)])]
            shape.vlan = true; shape.gtpu = true; shape.outerIPv4 = true
        }
        let client = kind % 8 == 0 ? device6 : device4
        let server = client.isIPv6 ? server6 : server4
        truth.devices.insert(client)
        let roll = rng.next() % 100
        let site: Site = roll < 25 ? .portal : roll < 55 ? .images : roll < 70 ? .statics : roll < 90 ? .api : .video
        let n = rng.next() % 40
        let host: String
        switch site {
        case .portal: host = "www.news\(n).example.com"
        case .images: host = "img\(rng.next() % 4).cdn\(n).example.net"
        case .statics: host = "static.shop\(n).example.com"
        case .api: host = "api.app\(n).example.org"
        case .video: host = "edge\(rng.next() % 8).vod\(n).example.net"
        }
        let serverPort: UInt16 = rng.next() % 10 == 0 ? 8080 : 80
        return keepAliveSession(shape: shape, client: client, server: server, clientPort: clientPort,
                                serverPort: serverPort, host: host, site: site)
    }

    private mutating func keepAliveSession(shape: Shape, client: IPAddress, server: IPAddress, clientPort: UInt16,
                                           serverPort: UInt16, host: String, site: Site) -> [[UInt8]]
    {
        var c = UInt32(truncatingIfNeeded: rng.next()), s = UInt32(truncatingIfNeeded: rng.next())
        // Full-size segments: a 1500-byte MTU less IPv6's longer header, and for GTP-U the tunnel's overhead
        // (UEs get a smaller MTU so the outer packet fits).
        let mss = 1460 - (client.isIPv6 ? 20 : 0) - (shape.gtpu ? 60 : 0)
        let agent = site == .video && rng.next() % 2 == 0
            ? "ExoPlayerLib/2.19.1" : Self.userAgents[Int(rng.next() % UInt64(Self.userAgents.count))]
        let language = Self.languages[Int(rng.next() % UInt64(Self.languages.count))]
        let cookie = cookieValue()
        let pop = Self.pops[Int(rng.next() % UInt64(Self.pops.count))]
        func up(_ flags: UInt8, _ payload: ArraySlice<UInt8> = []) -> [UInt8] {
            PacketBuilder.build(wrap(shape, src: client, dst: server,
                                     [.tcp(src: clientPort, dst: serverPort, seq: c, ack: s, flags: flags,
                                           options: flags & TCPFlags.syn != 0
                                               ? TCPOption.mss(UInt16(mss)) + TCPOption.sackPermitted : [])]
                                     + (payload.isEmpty ? [] : [.payload(Array(payload))])))
        }
        func down(_ flags: UInt8, _ payload: ArraySlice<UInt8> = []) -> [UInt8] {
            PacketBuilder.build(wrap(shape, src: server, dst: client,
                                     [.tcp(src: serverPort, dst: clientPort, seq: s, ack: c, flags: flags,
                                           options: flags & TCPFlags.syn != 0 ? TCPOption.mss(1460) : [])]
                                     + (payload.isEmpty ? [] : [.payload(Array(payload))])))
        }
        var frames: [[UInt8]] = []
        frames.append(up(TCPFlags.syn)); c &+= 1
        frames.append(down(TCPFlags.synAck)); s &+= 1
        frames.append(up(TCPFlags.ack))
        let exchanges = 2 + Int(rng.next() % 7)
        var referer: String?
        for i in 0..<exchanges {
            let resource = pickResource(site, first: i == 0)
            let e = exchange(resource, host: host, agent: agent, language: language, cookie: cookie,
                             referer: referer, pop: pop)
            var at = 0
            while at < e.request.count {
                let segment = e.request[at..<min(at + mss, e.request.count)]
                frames.append(up(TCPFlags.pshAck, segment)); c &+= UInt32(segment.count)
                at += segment.count
            }
            // The server sends full segments, PSH on the last; the client acknowledges every second one.
            at = 0
            var sent = 0
            while at < e.response.count {
                let segment = e.response[at..<min(at + mss, e.response.count)]
                at += segment.count
                let last = at == e.response.count
                frames.append(down(last ? TCPFlags.pshAck : TCPFlags.ack, segment)); s &+= UInt32(segment.count)
                sent += 1
                if sent % 2 == 0 || last { frames.append(up(TCPFlags.ack)) }
            }
            truth.httpRequests += 1
            truth.httpResponses += 1
            if e.chunked { truth.httpChunkedResponses += 1 }
            if resource == .page { referer = "http://\(host)\(e.path)" }
        }
        if rng.next() % 10 == 0 {
            frames.append(up(TCPFlags.rst | TCPFlags.ack))  // a browser dropping an idle connection
        } else {
            frames.append(up(TCPFlags.finAck)); c &+= 1
            frames.append(down(TCPFlags.finAck)); s &+= 1
            frames.append(up(TCPFlags.ack))
        }
        truth.tcpFlows += 1
        count(shape, inner6: client.isIPv6, tcp: true, packets: frames.count)
        return frames
    }

    private mutating func pickResource(_ site: Site, first: Bool) -> Resource {
        let r = rng.next() % 100
        switch site {
        case .portal:
            if first { return .page }
            return r < 8 ? .page : r < 33 ? .script : r < 48 ? .style : r < 88 ? .image : r < 93 ? .font : .json
        case .images: return .image
        case .statics: return r < 50 ? .script : r < 85 ? .style : .font
        case .api: return .json
        case .video: return first ? .manifest : .segment
        }
    }

    /// One request and its response, as the bytes each side sends.
    private mutating func exchange(_ resource: Resource, host: String, agent: String, language: String,
                                   cookie: String, referer: String?, pop: String)
        -> (request: [UInt8], response: [UInt8], chunked: Bool, path: String)
    {
        let n = rng.next() % 100_000
        let tag = String(rng.next() & 0xffff_ffff, radix: 16)
        var method = "GET"
        var requestBody: [UInt8] = []
        let path: String, accept: String, contentType: String, cacheControl: String
        var bodySize: Int, text = true, chunkedShare: UInt64 = 0, revalidates = false
        switch resource {
        case .page:
            let slugs = ["edge-computing-explained", "match-report", "weather-week", "election-live", "recipes"]
            let pages = ["/", "/news/2025/11/\(slugs[Int(n % 5)])-\(n)", "/section/sport?page=\(n % 9)",
                         "/article/\(n).html"]
            path = pages[Int(rng.next() % 4)]
            accept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
            contentType = "text/html; charset=utf-8"
            cacheControl = rng.next() % 2 == 0 ? "private, no-cache, no-store, must-revalidate"
                : "public, max-age=60, s-maxage=300"
            bodySize = sized(6_000, 90_000)
            chunkedShare = 70
        case .script:
            let names = ["app", "vendor", "runtime", "analytics", "chunk-\(n % 64)"]
            path = "/static/js/\(names[Int(n % 5)]).\(tag).js"
            accept = "*/*"
            contentType = "application/javascript"
            cacheControl = "public, max-age=31536000, immutable"
            bodySize = sized(1_000, 200_000)
            revalidates = true
        case .style:
            path = "/static/css/\(["main", "theme", "print"][Int(n % 3)]).\(tag).css"
            accept = "text/css,*/*;q=0.1"
            contentType = "text/css"
            cacheControl = "public, max-age=31536000, immutable"
            bodySize = sized(1_000, 80_000)
            revalidates = true
        case .image:
            let kinds = ["products", "banners", "avatars", "thumbs"], formats = ["jpg", "webp", "png"]
            let sizes = ["160x160", "400x300", "800x800", "1200x628"]
            let format = formats[Int(rng.next() % 3)]
            path = "/images/\(kinds[Int(n % 4)])/\(n)/\(sizes[Int(rng.next() % 4)]).\(format)"
            accept = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
            contentType = format == "jpg" ? "image/jpeg" : "image/\(format)"
            cacheControl = "public, max-age=86400"
            bodySize = sized(800, 150_000)
            text = false
            revalidates = true
        case .font:
            path = "/fonts/\(["inter", "roboto", "noto-sans"][Int(n % 3)])-\(["regular", "bold", "var"][Int(rng.next() % 3)]).\(tag).woff2"
            accept = "*/*"
            contentType = "font/woff2"
            cacheControl = "public, max-age=31536000, immutable"
            bodySize = sized(15_000, 120_000)
            text = false
            revalidates = true
        case .json:
            if rng.next() % 100 < 15 {
                method = "POST"
                path = "/api/v2/events"
                let fields = (0..<(1 + rng.next() % 12)).map { i in "\"e\(i)\":\"\(tag)-\(n &+ i)\"" }
                requestBody = Array(("{" + fields.joined(separator: ",") + "}").utf8)
            } else {
                let endpoints = ["items", "feed", "prices", "user/settings", "recommendations"]
                path = "/api/v\(1 + n % 3)/\(endpoints[Int(rng.next() % 5)])?id=\(n)&page=\(rng.next() % 20)&lang=en"
            }
            accept = "application/json, text/plain, */*"
            contentType = "application/json"
            cacheControl = ["no-store", "private, max-age=0", "public, max-age=30"][Int(rng.next() % 3)]
            bodySize = sized(80, 8_000)
            chunkedShare = 40
        case .manifest:
            path = "/vod/\(n)/master.m3u8"
            accept = "*/*"
            contentType = "application/vnd.apple.mpegurl"
            cacheControl = "public, max-age=2"
            bodySize = sized(300, 2_000)
        case .segment:
            path = "/vod/\(n % 500)/\(["480p", "720p", "1080p"][Int(rng.next() % 3)])/seg-\(n % 900).m4s"
            accept = "*/*"
            contentType = "video/iso.segment"
            cacheControl = "public, max-age=604800"
            bodySize = sized(40_000, 250_000)
            text = false
        }
        let conditional = revalidates && rng.next() % 100 < 15
        let etag = "\"\(String(bodySize, radix: 16))-\(tag)\""
        let date = httpDate(timestamp / 1_000_000_000)
        let modified = httpDate(timestamp / 1_000_000_000 - 3600 - rng.next() % 5_000_000)

        var request = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: keep-alive\r\n"
        if method == "POST" {
            request += "Content-Length: \(requestBody.count)\r\nContent-Type: application/json\r\n"
            request += "Origin: http://\(host)\r\n"
        }
        request += "User-Agent: \(agent)\r\nAccept: \(accept)\r\n"
        if let referer { request += "Referer: \(referer)\r\n" }
        request += "Accept-Encoding: gzip, deflate, br\r\nAccept-Language: \(language)\r\n"
        if conditional { request += "If-None-Match: \(etag)\r\nIf-Modified-Since: \(modified)\r\n" }
        if resource != .image && resource != .segment { request += "Cookie: \(cookie)\r\n" }
        request += "\r\n"

        // Status: revalidations get 304; a few API misses and page redirects.
        var status = 200, reason = "OK"
        if conditional {
            status = 304; reason = "Not Modified"; bodySize = 0
        } else if resource == .json && rng.next() % 100 < 3 {
            status = 404; reason = "Not Found"; bodySize = 60
        } else if resource == .page && rng.next() % 100 < 3 {
            status = 301; reason = "Moved Permanently"; bodySize = 162
        }
        let chunked = status == 200 && rng.next() % 100 < chunkedShare
        let hit = rng.next() % 100 < 80
        var response = "HTTP/1.1 \(status) \(reason)\r\nDate: \(date)\r\n"
        response += "Server: \(["nginx/1.25.3", "ATS/9.2.3", "Apache", "openresty"][Int(n % 4)])\r\n"
        if status != 304 { response += "Content-Type: \(contentType)\r\n" }
        if chunked {
            response += "Transfer-Encoding: chunked\r\n"
        } else if status != 304 {
            response += "Content-Length: \(bodySize)\r\n"
        }
        response += "Connection: keep-alive\r\nCache-Control: \(cacheControl)\r\n"
        if status == 301 { response += "Location: http://\(host)/\r\n" }
        if resource != .json && resource != .page {
            response += "ETag: \(etag)\r\nLast-Modified: \(modified)\r\n"
        }
        if text { response += "Vary: Accept-Encoding\r\n" } else { response += "Accept-Ranges: bytes\r\n" }
        if hit { response += "Age: \(rng.next() % 86_400)\r\n" }
        response += "Via: 1.1 varnish (Varnish/7.4), 1.1 edge-\(pop) (ApacheTrafficServer/9.2.3)\r\n"
        response += hit ? "X-Cache: HIT from edge-\(pop)\r\nX-Cache-Hits: \(1 + rng.next() % 400)\r\n"
            : "X-Cache: MISS from edge-\(pop)\r\n"
        if resource == .page && status == 200 { response += "Set-Cookie: seen=\(tag); Path=/; Max-Age=86400\r\n" }
        response += "\r\n"

        var responseBytes = Array(response.utf8)
        let body = bodyBytes(bodySize, text: text)
        if chunked {
            // Chunks of one size per response (servers flush fixed buffers), the last one shorter.
            let chunkSize = [1024, 4096, 8192, 16_384][Int(rng.next() % 4)]
            var at = 0
            while at < body.count {
                let piece = body[at..<min(at + chunkSize, body.count)]
                responseBytes += Array((String(piece.count, radix: 16) + "\r\n").utf8) + piece + [13, 10]
                at += piece.count
            }
            responseBytes += Array("0\r\n\r\n".utf8)
        } else {
            responseBytes += body
        }
        return (Array(request.utf8) + requestBody, responseBytes, chunked, path)
    }

    /// Roughly log-uniform between `low` and `high`: a random power-of-two band, then uniform within it (many
    /// small objects, a long tail of large ones).
    private mutating func sized(_ low: Int, _ high: Int) -> Int {
        var bands = 0
        while low << (bands + 1) <= high { bands += 1 }
        let bottom = low << Int(rng.next() % UInt64(bands + 1))
        let top = min(high, bottom * 2)
        return bottom + Int(rng.next() % UInt64(max(top - bottom, 1)))
    }

    /// `n` body bytes from the text-like or the random-looking block, starting anywhere in it.
    private mutating func bodyBytes(_ n: Int, text: Bool) -> [UInt8] {
        let block = text ? textBlock : binaryBlock
        var out: [UInt8] = []
        out.reserveCapacity(n)
        var at = Int(rng.next() % UInt64(block.count))
        while out.count < n {
            let take = min(n - out.count, block.count - at)
            out += block[at..<at + take]
            at = 0
        }
        return out
    }

    /// A session cookie, analytics ids and a preferences blob of varying length.
    private mutating func cookieValue() -> String {
        let sid = String(rng.next(), radix: 16) + String(rng.next(), radix: 16)
        var cookie = "sid=\(sid); _ga=GA1.2.\(rng.next() % 1_000_000_000).\(1_700_000_000 + rng.next() % 64_000_000)"
        cookie += "; consent=analytics%3A\(rng.next() % 2 == 0 ? "yes" : "no")"
        let prefs = Int(rng.next() % 300)
        if prefs > 40 {
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
            cookie += "; prefs=" + String(decoding: (0..<prefs).map { _ in alphabet[Int(rng.next() % 64)] }, as: UTF8.self)
        }
        return cookie
    }
}

/// An IMF-fixdate (RFC 9110 §5.6.7) for `seconds` since the epoch: "Tue, 25 Nov 2025 10:13:20 GMT".
private func httpDate(_ seconds: UInt64) -> String {
    let days = Int(seconds / 86_400), rest = Int(seconds % 86_400)
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468
    let era = z / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(weekdays[days % 7]), \(two(day)) \(months[month - 1]) \(year) \(two(rest / 3600)):\(two(rest / 60 % 60)):\(two(rest % 60)) GMT"
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
