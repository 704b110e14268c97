import Decode

/// Builds packets from `Layer`s, inside-out, with lengths, next-protocol fields and checksums filled in.
public enum PacketBuilder {
    /// The bytes of `layers`, outermost first.
    public static func build(_ layers: [Layer]) -> [UInt8] { assemble(layers).bytes }

    /// The bytes of `layers` and the byte offset where each layer starts (same order as `layers`).
    public static func buildWithOffsets(_ layers: [Layer]) -> (bytes: [UInt8], offsets: [Int]) { assemble(layers) }

    /// The byte offset where each of `layers` starts in `build(layers)`.
    public static func layerOffsets(_ layers: [Layer]) -> [Int] { assemble(layers).offsets }

    // MARK: - Fragments

    /// A transport datagram (`layers` such as `[.udp(...), .payload(...)]`) with its checksum computed over the
    /// pseudo-header of `src`/`dst`: the IP payload to split with `ipv4Fragments`/`ipv6Fragments`.
    public static func datagram(_ layers: [Layer], src: IPAddress, dst: IPAddress) -> [UInt8] {
        let ip: Layer = src.isIPv6 ? .ipv6(src: src, dst: dst) : .ipv4(src: src, dst: dst)
        let built = assemble([ip] + layers)
        return Array(built.bytes[built.offsets[1]...])
    }

    /// The IP protocol number a datagram starting with `layer` is carried as (6 TCP, 17 UDP, 1/58 ICMP...).
    public static func ipProtocol(of layer: Layer?, inIPv6: Bool) -> UInt8 {
        switch layer {
        case .tcp: IPProtocol.tcp
        case .udp: IPProtocol.udp
        case .gre, .erspanII: IPProtocol.gre
        case .ipv4: IPProtocol.ipv4
        case .ipv6: IPProtocol.ipv6
        case .ipv6Fragment: 44
        case .ipv6Extension(let type, _): type
        case .icmp: inIPv6 ? IPProtocol.icmpv6 : IPProtocol.icmp
        case .mpls: 137  // MPLS-in-IP, RFC 4023
        default: 253  // RFC 3692 experimentation
        }
    }

    /// Splits `data` into pieces of `fragmentSize` bytes (a multiple of 8; the last may be shorter), each piece
    /// starting `overlap` bytes (a multiple of 8) before the end of the previous one.
    public static func fragmentPieces(_ data: [UInt8], fragmentSize: Int, overlap: Int = 0)
        -> [(offset: Int, data: [UInt8], more: Bool)]
    {
        precondition(fragmentSize > 0 && fragmentSize % 8 == 0, "fragment size must be a positive multiple of 8")
        precondition(overlap >= 0 && overlap % 8 == 0 && overlap < fragmentSize, "bad overlap")
        var out: [(offset: Int, data: [UInt8], more: Bool)] = []
        var offset = 0
        repeat {
            let end = min(data.count, offset + fragmentSize)
            out.append((offset, Array(data[offset..<end]), end < data.count))
            offset = end - overlap
        } while offset + overlap < data.count
        return out
    }

    /// One IPv4 fragment carrying `data` at byte `offset` of a datagram of `ipProtocol`, inside `outer` layers.
    public static func ipv4FragmentPacket(_ data: [UInt8], offset: Int, more: Bool, ipProtocol: UInt8,
                                          src: IPAddress, dst: IPAddress, id: UInt16,
                                          outer: [Layer] = [.ethernet()], ttl: UInt8 = 64) -> [UInt8]
    {
        build(outer + [
            .ipv4(src: src, dst: dst, ttl: ttl, id: id, moreFragments: more, fragmentOffset: offset,
                  protocolOverride: ipProtocol),
            .payload(data),
        ])
    }

    /// One IPv6 packet with a fragment header carrying `data` at byte `offset` of a datagram of `ipProtocol`.
    public static func ipv6FragmentPacket(_ data: [UInt8], offset: Int, more: Bool, ipProtocol: UInt8,
                                          src: IPAddress, dst: IPAddress, id: UInt32,
                                          outer: [Layer] = [.ethernet()], hopLimit: UInt8 = 64) -> [UInt8]
    {
        build(outer + [
            .ipv6(src: src, dst: dst, hopLimit: hopLimit),
            .ipv6Fragment(offset: offset, more: more, id: id, nextHeaderOverride: ipProtocol),
            .payload(data),
        ])
    }

    /// The datagram `layers` (transport header and payload) as IPv4 fragments of `fragmentSize` data bytes, in order.
    public static func ipv4Fragments(_ layers: [Layer], src: IPAddress, dst: IPAddress, id: UInt16,
                                     fragmentSize: Int, overlap: Int = 0, outer: [Layer] = [.ethernet()],
                                     ttl: UInt8 = 64) -> [[UInt8]]
    {
        let data = datagram(layers, src: src, dst: dst)
        let proto = ipProtocol(of: layers.first, inIPv6: false)
        return fragmentPieces(data, fragmentSize: fragmentSize, overlap: overlap).map {
            ipv4FragmentPacket($0.data, offset: $0.offset, more: $0.more, ipProtocol: proto, src: src, dst: dst,
                               id: id, outer: outer, ttl: ttl)
        }
    }

    /// The datagram `layers` as IPv6 fragments (fragment header after the fixed header), in order.
    public static func ipv6Fragments(_ layers: [Layer], src: IPAddress, dst: IPAddress, id: UInt32,
                                     fragmentSize: Int, overlap: Int = 0, outer: [Layer] = [.ethernet()],
                                     hopLimit: UInt8 = 64) -> [[UInt8]]
    {
        let data = datagram(layers, src: src, dst: dst)
        let proto = ipProtocol(of: layers.first, inIPv6: true)
        return fragmentPieces(data, fragmentSize: fragmentSize, overlap: overlap).map {
            ipv6FragmentPacket($0.data, offset: $0.offset, more: $0.more, ipProtocol: proto, src: src, dst: dst,
                               id: id, outer: outer, hopLimit: hopLimit)
        }
    }

    // MARK: - Linux cooked capture headers

    /// A 16-byte LINKTYPE_LINUX_SLL (113) header for a frame of EtherType `protocol`, to prepend to the L3 bytes.
    public static func sllHeader(protocol etherType: UInt16, packetType: UInt16 = 0, arphrdType: UInt16 = 1,
                                 address: MAC = .defaultSource) -> [UInt8]
    {
        bigEndianBytes(packetType) + bigEndianBytes(arphrdType) + bigEndianBytes(UInt16(6)) + address.bytes
            + [0, 0] + bigEndianBytes(etherType)
    }

    /// A 20-byte LINKTYPE_LINUX_SLL2 (276) header for a frame of EtherType `protocol`, to prepend to the L3 bytes.
    public static func sll2Header(protocol etherType: UInt16, interfaceIndex: UInt32 = 1, arphrdType: UInt16 = 1,
                                  packetType: UInt8 = 0, address: MAC = .defaultSource) -> [UInt8]
    {
        bigEndianBytes(etherType) + [0, 0] + bigEndianBytes(interfaceIndex) + bigEndianBytes(arphrdType)
            + [packetType, 6] + address.bytes + [0, 0]
    }

    /// A 4-byte BSD loopback header for address `family` (2 IPv4; 10, 24, 28 or 30 IPv6): little-endian for
    /// LINKTYPE_NULL (0) as written on x86/ARM hosts, big-endian for LINKTYPE_LOOP (108).
    public static func loopbackHeader(family: UInt32, bigEndian: Bool = false) -> [UInt8] {
        bigEndian ? bigEndianBytes(family) : bigEndianBytes(family.byteSwapped)
    }

    // MARK: - Checksums

    /// The Internet checksum (RFC 1071) of `bytes`, ready to store (one's complement of the one's-complement sum).
    public static func internetChecksum(_ bytes: [UInt8]) -> UInt16 {
        ~fold(sum(bytes, 0))
    }

    /// Recomputes the IPv4 header checksum of the header starting at `offset` of `bytes`.
    public static func fixIPv4HeaderChecksum(_ bytes: inout [UInt8], at offset: Int) {
        let ihl = Int(bytes[offset] & 0x0f) * 4
        bytes.poke(UInt16(0), at: offset + 10)
        bytes.poke(internetChecksum(Array(bytes[offset..<min(bytes.count, offset + ihl)])), at: offset + 10)
    }

    static func sum(_ bytes: [UInt8], _ initial: UInt32) -> UInt32 {
        var s = initial
        var i = 0
        while i + 1 < bytes.count {
            s &+= UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
            i += 2
        }
        if i < bytes.count { s &+= UInt32(bytes[i]) << 8 }
        return s
    }

    static func fold(_ s: UInt32) -> UInt16 {
        var s = s
        while s > 0xffff { s = (s & 0xffff) + (s >> 16) }
        return UInt16(s)
    }

    /// Checksum of a transport segment over the pseudo-header of `src`/`dst` (RFC 768/793/8200).
    static func transportChecksum(_ segment: [UInt8], proto: UInt8, src: IPAddress, dst: IPAddress) -> UInt16 {
        var pseudo = src.bytes + dst.bytes
        if src.isIPv6 {
            pseudo += bigEndianBytes(UInt32(truncatingIfNeeded: segment.count)) + [0, 0, 0, proto]
        } else {
            pseudo += [0, proto] + bigEndianBytes(UInt16(truncatingIfNeeded: segment.count))
        }
        return ~fold(sum(segment, sum(pseudo, 0)))
    }

    // MARK: - Assembly

    /// The EtherType (or GRE protocol) announcing `next`.
    static func etherType(of next: Layer?) -> UInt16 {
        switch next {
        case .ipv4: 0x0800
        case .ipv6: 0x86dd
        case .vlan(_, let tpid, _, _): tpid
        case .mpls: 0x8847
        case .pppoeSession: 0x8864
        case .arp: 0x0806
        case .ethernet: 0x6558  // transparent Ethernet bridging (GRE)
        default: 0x88b5  // IEEE 802 local experimental
        }
    }

    /// The nearest IP layer before `index`, for pseudo-headers: (source, destination).
    static func enclosingIP(_ layers: [Layer], before index: Int) -> (IPAddress, IPAddress)? {
        var j = index - 1
        while j >= 0 {
            switch layers[j] {
            case .ipv4(let src, let dst, _, _, _, _, _, _, _): return (src, dst)
            case .ipv6(let src, let dst, _, _, _): return (src, dst)
            default: j -= 1
            }
        }
        return nil
    }

    /// Whether the nearest IP layer before `index` is IPv6.
    static func insideIPv6(_ layers: [Layer], before index: Int) -> Bool {
        enclosingIP(layers, before: index)?.0.isIPv6 ?? false
    }

    static func assemble(_ layers: [Layer]) -> (bytes: [UInt8], offsets: [Int]) {
        var inner: [UInt8] = []
        var sizes = [Int](repeating: 0, count: layers.count)
        for i in layers.indices.reversed() {
            let next: Layer? = i + 1 < layers.count ? layers[i + 1] : nil
            let header = encode(layers, i, next: next, inner: inner)
            sizes[i] = header.count
            inner = header + inner
        }
        var offsets: [Int] = []
        offsets.reserveCapacity(layers.count)
        var o = 0
        for s in sizes {
            offsets.append(o)
            o += s
        }
        return (inner, offsets)
    }

    /// The bytes layer `i` puts before `inner` (the already-built layers after it).
    static func encode(_ layers: [Layer], _ i: Int, next: Layer?, inner: [UInt8]) -> [UInt8] {
        switch layers[i] {
        case let .ethernet(src, dst, override):
            return dst.bytes + src.bytes + bigEndianBytes(override ?? etherType(of: next))

        case let .vlan(id, _, pcp, override):
            let tci = UInt16(pcp & 0x7) << 13 | (id & 0x0fff)
            return bigEndianBytes(tci) + bigEndianBytes(override ?? etherType(of: next))

        case let .mpls(label, ttl, tc):
            var bottom = true
            if case .mpls = next { bottom = false }
            let entry = (label & 0xfffff) << 12 | UInt32(tc & 0x7) << 9 | (bottom ? 0x100 : 0) | UInt32(ttl)
            return bigEndianBytes(entry)

        case .mplsPseudowireControlWord:
            return [0, 0, 0, 0]

        case let .pppoeSession(id, override):
            let ppp: UInt16
            switch next {
            case .ipv4: ppp = 0x0021
            case .ipv6: ppp = 0x0057
            case .mpls: ppp = 0x0281
            default: ppp = 0xc021
            }
            return [0x11, 0x00] + bigEndianBytes(id) + bigEndianBytes(UInt16(truncatingIfNeeded: 2 + inner.count))
                + bigEndianBytes(override ?? ppp)

        case let .ipv4(src, dst, ttl, id, df, mf, fragOffset, options, protoOverride):
            var opts = options
            while opts.count % 4 != 0 { opts.append(0) }
            let headerLength = 20 + opts.count
            var flags = UInt16(truncatingIfNeeded: fragOffset / 8) & 0x1fff
            if df { flags |= 0x4000 }
            if mf { flags |= 0x2000 }
            var h: [UInt8] = [0x40 | UInt8(truncatingIfNeeded: headerLength / 4) & 0x0f, 0]
            h += bigEndianBytes(UInt16(truncatingIfNeeded: headerLength + inner.count))
            h += bigEndianBytes(id) + bigEndianBytes(flags)
            h += [ttl, protoOverride ?? ipProtocol(of: next, inIPv6: false), 0, 0]
            h += ipv4Bytes(src) + ipv4Bytes(dst) + opts
            h.poke(internetChecksum(h), at: 10)
            return h

        case let .ipv6(src, dst, hopLimit, nextOverride, flowLabel):
            var h = bigEndianBytes(UInt32(0x6000_0000) | (flowLabel & 0xfffff))
            h += bigEndianBytes(UInt16(truncatingIfNeeded: inner.count))
            h += [nextOverride ?? ipProtocol(of: next, inIPv6: true), hopLimit]
            h += ipv6Bytes(src) + ipv6Bytes(dst)
            return h

        case let .ipv6Extension(type, body):
            let nextHeader = ipProtocol(of: next, inIPv6: true)
            var b = body
            let unit = type == 51 ? 4 : 8
            let padding = (unit - (2 + b.count) % unit) % unit
            if type == 0 || type == 60 {
                if padding == 1 { b.append(0) }  // Pad1
                else if padding > 1 { b += [1, UInt8(padding - 2)] + [UInt8](repeating: 0, count: padding - 2) }
            } else {
                b += [UInt8](repeating: 0, count: padding)
            }
            let total = 2 + b.count
            let length = type == 51 ? total / 4 - 2 : total / 8 - 1
            return [nextHeader, UInt8(truncatingIfNeeded: length)] + b

        case let .ipv6Fragment(offset, more, id, nextOverride):
            let field = UInt16(truncatingIfNeeded: offset / 8) << 3 | (more ? 1 : 0)
            return [nextOverride ?? ipProtocol(of: next, inIPv6: true), 0] + bigEndianBytes(field)
                + bigEndianBytes(id)

        case let .gre(key, sequence, checksum, protoOverride):
            var flags: UInt16 = 0
            if checksum { flags |= 0x8000 }
            if key != nil { flags |= 0x2000 }
            if sequence != nil { flags |= 0x1000 }
            var h = bigEndianBytes(flags) + bigEndianBytes(protoOverride ?? etherType(of: next))
            if checksum { h += [0, 0, 0, 0] }
            if let key { h += bigEndianBytes(key) }
            if let sequence { h += bigEndianBytes(sequence) }
            if checksum { h.poke(internetChecksum(h + inner), at: 4) }
            return h

        case let .erspanII(session, vlan, sequence):
            var h = bigEndianBytes(UInt16(0x1000)) + bigEndianBytes(UInt16(0x88be)) + bigEndianBytes(sequence)
            h += bigEndianBytes(UInt16(0x1000) | (vlan & 0x0fff))  // version 1 (type II), VLAN
            h += bigEndianBytes(session & 0x03ff)  // COS 0, encapsulation 0, not truncated, session id
            h += [0, 0, 0, 0]  // reserved, index
            return h

        case let .gtpu(teid, messageType, sequence, npdu, extensions):
            var flags: UInt8 = 0x30  // version 1, protocol type GTP
            if !extensions.isEmpty { flags |= 0x04 }
            if sequence != nil { flags |= 0x02 }
            if npdu != nil { flags |= 0x01 }
            var optional: [UInt8] = []
            if flags & 0x07 != 0 {
                optional = bigEndianBytes(sequence ?? 0) + [npdu ?? 0, extensions.first?.type ?? 0]
                for (k, ext) in extensions.enumerated() {
                    var content = ext.content
                    while (content.count + 2) % 4 != 0 { content.append(0) }
                    let units = ext.lengthOverride ?? UInt8(truncatingIfNeeded: (content.count + 2) / 4)
                    let nextType = k + 1 < extensions.count ? extensions[k + 1].type : 0
                    optional += [units] + content + [nextType]
                }
            }
            return [flags, messageType] + bigEndianBytes(UInt16(truncatingIfNeeded: optional.count + inner.count))
                + bigEndianBytes(teid) + optional

        case let .udp(src, dst):
            var h = bigEndianBytes(src) + bigEndianBytes(dst)
            h += bigEndianBytes(UInt16(truncatingIfNeeded: 8 + inner.count)) + [0, 0]
            if let (s, d) = enclosingIP(layers, before: i) {
                var c = transportChecksum(h + inner, proto: IPProtocol.udp, src: s, dst: d)
                if c == 0 { c = 0xffff }
                h.poke(c, at: 6)
            }
            return h

        case let .tcp(src, dst, seq, ack, flags, window, options):
            var opts = options
            while opts.count % 4 != 0 { opts.append(0) }
            var h = bigEndianBytes(src) + bigEndianBytes(dst) + bigEndianBytes(seq) + bigEndianBytes(ack)
            h += [UInt8(truncatingIfNeeded: (20 + opts.count) / 4) << 4, flags]
            h += bigEndianBytes(window) + [0, 0, 0, 0] + opts
            if let (s, d) = enclosingIP(layers, before: i) {
                h.poke(transportChecksum(h + inner, proto: IPProtocol.tcp, src: s, dst: d), at: 16)
            }
            return h

        case let .icmp(type, code, body):
            var h = [type, code, 0, 0] + body
            if let (s, d) = enclosingIP(layers, before: i), s.isIPv6 {
                h.poke(transportChecksum(h + inner, proto: IPProtocol.icmpv6, src: s, dst: d), at: 2)
            } else {
                h.poke(internetChecksum(h + inner), at: 2)
            }
            return h

        case let .arp(operation, senderMAC, senderIP, targetMAC, targetIP):
            return [0, 1, 0x08, 0x00, 6, 4] + bigEndianBytes(operation) + senderMAC.bytes + ipv4Bytes(senderIP)
                + targetMAC.bytes + ipv4Bytes(targetIP)

        case let .payload(bytes):
            return bytes
        }
    }

    static func ipv4Bytes(_ a: IPAddress) -> [UInt8] {
        bigEndianBytes(UInt32(truncatingIfNeeded: a.low))
    }

    static func ipv6Bytes(_ a: IPAddress) -> [UInt8] {
        bigEndianBytes(a.high) + bigEndianBytes(a.low)
    }
}

extension Array where Element == UInt8 {
    /// Overwrites the byte at `offset`.
    public mutating func poke(_ value: UInt8, at offset: Int) { self[offset] = value }
    /// Overwrites two bytes at `offset` with `value` in network order.
    public mutating func poke(_ value: UInt16, at offset: Int) {
        self[offset] = UInt8(value >> 8); self[offset + 1] = UInt8(value & 0xff)
    }
    /// Overwrites four bytes at `offset` with `value` in network order.
    public mutating func poke(_ value: UInt32, at offset: Int) {
        for k in 0..<4 { self[offset + k] = UInt8(truncatingIfNeeded: value >> UInt32(24 - 8 * k)) }
    }
    /// Reads two bytes at `offset` in network order.
    public func peekUInt16(at offset: Int) -> UInt16 { UInt16(self[offset]) << 8 | UInt16(self[offset + 1]) }
}
