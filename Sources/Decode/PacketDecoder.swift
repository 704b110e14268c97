/// Decodes L2-L4 and tunnel headers over borrowed bytes, without copying or allocating.
///
/// Every read is bounds-checked first; malformed input returns `.malformed(reason)` and never traps. The decoder is
/// stateless: IP fragments stop it with `.fragment` (details in `packet.fragment`); after reassembly, `resume(datagram:...)` continues from
/// the reassembled payload with the same packet context.
public enum PacketDecoder {
    /// Tunnels (GRE, IP-in-IP, GTP-U, MPLS pseudowires) nested deeper than this are refused.
    public static let maxTunnelDepth: UInt8 = 8
    /// IPv6 extension headers beyond this count are refused.
    public static let maxIPv6Extensions = 16

    /// Decodes one frame of `linkType` into `packet` (reset first with `resetForNextPacket`).
    @inlinable
    public static func decode(_ b: UnsafeRawBufferPointer, linkType: LinkType, into p: inout DecodedPacket)
        -> DecodeOutcome
    {
        p.resetForNextPacket()
        p.wireLength = b.count
        switch linkType {
        case .ethernet:
            return ethernet(b, 0, b.count, &p)
        case .raw:
            guard b.count >= 1 else { return .malformed(.ipv4Truncated) }
            switch b[0] >> 4 {
            case 4: return outlinedIPv4(b, 0, b.count, &p)
            case 6: return outlinedIPv6(b, 0, b.count, &p)
            default: return .malformed(.ipv4BadVersion)
            }
        case .ipv4:
            return outlinedIPv4(b, 0, b.count, &p)
        case .ipv6:
            return outlinedIPv6(b, 0, b.count, &p)
        case .null, .loop:
            guard b.count >= 4 else { return .malformed(.loopbackTruncated) }
            // AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28 or 30 depending on the OS that wrote the file.
            let raw = b.loadUnaligned(as: UInt32.self)
            let family = raw > 0xffff ? raw.byteSwapped : raw
            switch family {
            case 2: return outlinedIPv4(b, 4, b.count, &p)
            case 10, 24, 28, 30: return outlinedIPv6(b, 4, b.count, &p)
            default: p.note(.nonIP); return .notIP
            }
        case .linuxSLL:
            // struct sll_header: packet type, ARPHRD type, address length, 8 address bytes, protocol.
            guard b.count >= 16 else { return .malformed(.sllTruncated) }
            p.layers.insert(.sll)
            return etherType(u16(b, 14), b, 16, b.count, &p)
        case .linuxSLL2:
            // struct sll2_header: protocol, reserved, interface index, ARPHRD type, packet type, address.
            guard b.count >= 20 else { return .malformed(.sllTruncated) }
            p.layers.insert(.sll)
            return etherType(u16(b, 0), b, 20, b.count, &p)
        }
    }

    /// Continues decoding a reassembled IP datagram payload of `ipProtocol`, keeping the context (VLANs, tunnels,
    /// addresses) already in `packet` from the fragment that completed it.
    @inlinable
    public static func resume(datagram b: UnsafeRawBufferPointer, ipProtocol: UInt8, into p: inout DecodedPacket)
        -> DecodeOutcome
    {
        p.wireLength = b.count
        p.layers.insert(.reassembled)
        p.sourcePort = 0; p.destinationPort = 0; p.tcpFlags = 0
        p.payloadOffset = 0; p.payloadLength = 0
        return ipPayload(ipProtocol, b, 0, b.count, &p)
    }

    // MARK: - Reads (callers check bounds first)

    @inlinable @inline(__always)
    static func u16(_ b: UnsafeRawBufferPointer, _ o: Int) -> UInt16 {
        UInt16(bigEndian: b.loadUnaligned(fromByteOffset: o, as: UInt16.self))
    }
    @inlinable @inline(__always)
    static func u32(_ b: UnsafeRawBufferPointer, _ o: Int) -> UInt32 {
        UInt32(bigEndian: b.loadUnaligned(fromByteOffset: o, as: UInt32.self))
    }
    @inlinable @inline(__always)
    static func u64(_ b: UnsafeRawBufferPointer, _ o: Int) -> UInt64 {
        UInt64(bigEndian: b.loadUnaligned(fromByteOffset: o, as: UInt64.self))
    }

    /// Records the current innermost addresses as the tunnel endpoints and goes one tunnel deeper.
    @inlinable @inline(__always)
    static func enterTunnel(_ p: inout DecodedPacket) -> Bool {
        guard p.tunnelDepth < maxTunnelDepth else { return false }
        p.tunnelDepth &+= 1
        p.tunnelSource = p.source
        p.tunnelDestination = p.destination
        // The outer transport (GTP-U's UDP) is not the innermost one: its ports must not leak into an inner packet
        // that has no TCP/UDP of its own (ICMP, a fragment, another tunnel's other transport).
        p.sourcePort = 0; p.destinationPort = 0; p.tcpFlags = 0
        p.payloadOffset = 0; p.payloadLength = 0
        return true
    }

    // MARK: - Out-of-line entries
    // The layer functions are inlined into one another so the common path (Ethernet, VLAN, IP, TCP/UDP) is one
    // straight function. Tunnels start the chain again and the rarer link types and L2.5 layers enter it too:
    // they go through these out-of-line entries, which break the recursion and keep the code small.

    @usableFromInline @inline(never)
    static func outlinedEthernet(_ b: UnsafeRawBufferPointer, _ off: Int, _ end: Int, _ p: inout DecodedPacket)
        -> DecodeOutcome { ethernet(b, off, end, &p) }

    @usableFromInline @inline(never)
    static func outlinedIPv4(_ b: UnsafeRawBufferPointer, _ off: Int, _ end: Int, _ p: inout DecodedPacket)
        -> DecodeOutcome { ipv4(b, off, end, &p) }

    @usableFromInline @inline(never)
    static func outlinedIPv6(_ b: UnsafeRawBufferPointer, _ off: Int, _ end: Int, _ p: inout DecodedPacket)
        -> DecodeOutcome { ipv6(b, off, end, &p) }

    @usableFromInline @inline(never)
    static func outlinedMPLS(_ b: UnsafeRawBufferPointer, _ off: Int, _ end: Int, _ p: inout DecodedPacket)
        -> DecodeOutcome { mpls(b, off, end, &p) }

    @usableFromInline @inline(never)
    static func outlinedPPP(_ b: UnsafeRawBufferPointer, _ off: Int, _ end: Int, _ p: inout DecodedPacket)
        -> DecodeOutcome { ppp(b, off, end, &p) }

    // MARK: - Layer 2

    @inlinable @inline(__always)
    static func ethernet(_ b: UnsafeRawBufferPointer, _ off: Int, _ end: Int, _ p: inout DecodedPacket)
        -> DecodeOutcome
    {
        guard off + 14 <= end else { return .malformed(.ethernetTruncated) }
        p.layers.insert(.ethernet)
        let type = u16(b, off + 12)
        // Values below 0x0600 are 802.3 lengths (LLC/SNAP frames: spanning tree, CDP...).
        guard type >= 0x0600 else { p.note(.nonIP); return .notIP }
        return etherType(type, b, off + 14, end, &p)
    }

    @inlinable @inline(__always)
    static func etherType(_ type: UInt16, _ b: UnsafeRawBufferPointer, _ off: Int, _ end: Int,
                          _ p: inout DecodedPacket) -> DecodeOutcome
    {
        var type = type
        var off = off
        while true {
            switch type {
            case 0x8100, 0x88a8, 0x9100, 0x9200:
                // 802.1Q, 802.1ad, and the pre-standard QinQ TPIDs: any depth, each tag 4 bytes.
                guard off + 4 <= end else { return .malformed(.vlanTruncated) }
                p.pushVLAN(u16(b, off) & 0x0fff)
                p.layers.insert(p.vlanCount >= 2 ? [.vlan, .qinq] : .vlan)
                type = u16(b, off + 2)
                off += 4
            case 0x0800:
                return ipv4(b, off, end, &p)
            case 0x86dd:
                return ipv6(b, off, end, &p)
            case 0x8847, 0x8848:
                return outlinedMPLS(b, off, end, &p)
            case 0x8864:
                return pppoeSession(b, off, end, &p)
            default:
                p.note(.nonIP)
                return .notIP
            }
        }
    }

    @inlinable @inline(__always)
    static func mpls(_ b: UnsafeRawBufferPointer, _ off: Int, _ end: Int, _ p: inout DecodedPacket)
        -> DecodeOutcome
    {
        var off = off
        p.layers.insert(.mpls)
        while true {
            guard off + 4 <= end else { return .malformed(.mplsTruncated) }
            let entry = u32(b, off)
            p.mplsCount &+= 1
            off += 4
            if entry & 0x100 != 0 { break }  // bottom of stack
        }
        guard off < end else { return .malformed(.mplsTruncated) }
        // MPLS does not say what it carries; the first nibble does (RFC 4385 control word starts with 0000).
        switch b[off] >> 4 {
        case 4: return outlinedIPv4(b, off, end, &p)
        case 6: return outlinedIPv6(b, off, end, &p)
        case 0:
            guard enterTunnel(&p) else { return .malformed(.tooManyEncapsulations) }
            return outlinedEthernet(b, off + 4, end, &p)  // Ethernet pseudowire after its control word
        default: return .malformed(.mplsUnknownPayload)
        }
    }

    @inlinable @inline(__always)
    static func pppoeSession(_ b: UnsafeRawBufferPointer, _ off: Int, _ end: Int, _ p: inout DecodedPacket)
        -> DecodeOutcome
    {
        guard off + 8 <= end else { return .malformed(.pppoeTruncated) }
        // version 1, type 1, code 0 (session data)
        guard b[off] == 0x11, b[off + 1] == 0 else { return .malformed(.pppoeBadHeader) }
        p.layers.insert(.pppoe)
        let length = Int(u16(b, off + 4))
        let pppEnd = min(end, off + 6 + length)
        return ppp(b, off + 6, pppEnd, &p)
    }

    /// A PPP frame (PPPoE or PPTP's enhanced GRE), with optional address/control and compressed protocol fields.
    @inlinable @inline(__always)
    static func ppp(_ b: UnsafeRawBufferPointer, _ off: Int, _ end: Int, _ p: inout DecodedPacket) -> DecodeOutcome {
        var off = off
        if off + 2 <= end && b[off] == 0xff && b[off + 1] == 0x03 { off += 2 }
        guard off < end else { return .malformed(.pppoeTruncated) }
        var proto = UInt16(b[off])
        if proto & 1 == 0 {  // uncompressed two-byte protocol field
            guard off + 2 <= end else { return .malformed(.pppoeTruncated) }
            proto = u16(b, off)
            off += 2
        } else {
            off += 1
        }
        switch proto {
        case 0x0021: return outlinedIPv4(b, off, end, &p)
        case 0x0057: return outlinedIPv6(b, off, end, &p)
        default: p.note(.nonIP); return .notIP
        }
    }

    // MARK: - Layer 3

    @inlinable @inline(__always)
    static func ipv4(_ b: UnsafeRawBufferPointer, _ off: Int, _ end: Int, _ p: inout DecodedPacket) -> DecodeOutcome {
        guard off + 20 <= end else { return .malformed(.ipv4Truncated) }
        let vihl = b[off]
        guard vihl >> 4 == 4 else { return .malformed(.ipv4BadVersion) }
        let ihl = Int(vihl & 0x0f) &* 4
        guard ihl >= 20 else { return .malformed(.ipv4BadHeaderLength) }
        guard off + ihl <= end else { return .malformed(.ipv4Truncated) }
        let total = Int(u16(b, off + 2))
        guard total >= ihl else { return .malformed(.ipv4BadTotalLength) }
        var ipEnd = off + total
        // How much the capture cut: each IP layer sets it, so the innermost one's stands.
        p.capturedShortBy = ipEnd > end ? UInt32(truncatingIfNeeded: ipEnd - end) : 0
        if ipEnd > end {
            p.note(.ipCapturedShort)  // cut by the snap length (or lying): decode what is there
            ipEnd = end
        }
        // Options: EOL ends, NOP is one byte, everything else is type-length-value with length >= 2.
        var o = off + 20
        let optEnd = off + ihl
        while o < optEnd {
            let kind = b[o]
            if kind == 0 { break }
            if kind == 1 { o += 1; continue }
            guard o + 1 < optEnd else { return .malformed(.ipv4BadOptions) }
            let len = Int(b[o + 1])
            guard len >= 2, o + len <= optEnd else { return .malformed(.ipv4BadOptions) }
            o += len
        }
        p.layers.insert(.ipv4)
        p.source = IPAddress(ipv4: u32(b, off + 12))
        p.destination = IPAddress(ipv4: u32(b, off + 16))
        p.ipTTL = b[off + 8]
        let proto = b[off + 9]
        p.ipProtocol = proto
        let fragField = u16(b, off + 6)
        let moreFragments = fragField & 0x2000 != 0
        let fragOffset = Int(fragField & 0x1fff) &* 8
        if moreFragments || fragOffset != 0 {
            p.layers.insert(.fragment)
            p.fragment = FragmentInfo(
                source: p.source, destination: p.destination, identification: UInt32(u16(b, off + 4)),
                nextProtocol: proto, isIPv6: false, fragmentOffset: fragOffset, moreFragments: moreFragments,
                dataOffset: off + ihl, dataLength: ipEnd - (off + ihl))
            return .fragment
        }
        return ipPayload(proto, b, off + ihl, ipEnd, &p)
    }

    @inlinable @inline(__always)
    static func ipv6(_ b: UnsafeRawBufferPointer, _ off: Int, _ end: Int, _ p: inout DecodedPacket) -> DecodeOutcome {
        guard off + 40 <= end else { return .malformed(.ipv6Truncated) }
        guard b[off] >> 4 == 6 else { return .malformed(.ipv6BadVersion) }
        let payloadLength = Int(u16(b, off + 4))
        var next = b[off + 6]
        if payloadLength == 0 && next == 0 { return .malformed(.ipv6Jumbogram) }
        var ipEnd = off + 40 + payloadLength
        p.capturedShortBy = ipEnd > end ? UInt32(truncatingIfNeeded: ipEnd - end) : 0
        if ipEnd > end {
            p.note(.ipCapturedShort)
            ipEnd = end
        }
        p.layers.insert(.ipv6)
        p.source = IPAddress(high: u64(b, off + 8), low: u64(b, off + 16), isIPv6: true)
        p.destination = IPAddress(high: u64(b, off + 24), low: u64(b, off + 32), isIPv6: true)
        p.ipTTL = b[off + 7]
        var cur = off + 40
        var count = 0
        while true {
            switch next {
            case 0, 43, 60, 135, 139, 140:
                // Hop-by-hop, routing, destination options, mobility, HIP, shim6: length in 8-octet units.
                guard cur + 2 <= ipEnd else { return .malformed(.ipv6ExtensionTruncated) }
                let len = (Int(b[cur + 1]) + 1) &* 8
                guard cur + len <= ipEnd else { return .malformed(.ipv6ExtensionTruncated) }
                next = b[cur]
                cur += len
            case 51:
                // Authentication header: length in 4-octet units, minus 2.
                guard cur + 2 <= ipEnd else { return .malformed(.ipv6ExtensionTruncated) }
                let len = (Int(b[cur + 1]) + 2) &* 4
                guard cur + len <= ipEnd else { return .malformed(.ipv6ExtensionTruncated) }
                next = b[cur]
                cur += len
            case 44:
                guard cur + 8 <= ipEnd else { return .malformed(.ipv6ExtensionTruncated) }
                let inner = b[cur]
                let field = u16(b, cur + 2)
                let fragOffset = Int(field >> 3) &* 8
                let more = field & 1 != 0
                let ident = u32(b, cur + 4)
                cur += 8
                if fragOffset == 0 && !more {
                    next = inner  // atomic fragment (RFC 6946): a whole datagram
                } else {
                    p.layers.insert(.fragment)
                    p.ipProtocol = inner
                    p.fragment = FragmentInfo(
                        source: p.source, destination: p.destination, identification: ident, nextProtocol: inner,
                        isIPv6: true, fragmentOffset: fragOffset, moreFragments: more, dataOffset: cur,
                        dataLength: ipEnd - cur)
                    return .fragment
                }
            case 59:
                p.ipProtocol = 59  // no next header
                return .complete
            default:
                return ipPayload(next, b, cur, ipEnd, &p)
            }
            count += 1
            guard count <= maxIPv6Extensions else { return .malformed(.ipv6TooManyExtensions) }
        }
    }

    @inlinable @inline(__always)
    static func ipPayload(_ proto: UInt8, _ b: UnsafeRawBufferPointer, _ off: Int, _ end: Int,
                          _ p: inout DecodedPacket) -> DecodeOutcome
    {
        p.ipProtocol = proto
        switch proto {
        case IPProtocol.tcp:
            return tcp(b, off, end, &p)
        case IPProtocol.udp:
            return udp(b, off, end, &p)
        case IPProtocol.gre:
            return gre(b, off, end, &p)
        case IPProtocol.ipv4:
            guard enterTunnel(&p) else { return .malformed(.tooManyEncapsulations) }
            p.layers.insert(.ipInIP)
            return outlinedIPv4(b, off, end, &p)
        case IPProtocol.ipv6:
            guard enterTunnel(&p) else { return .malformed(.tooManyEncapsulations) }
            p.layers.insert(.ipInIP)
            return outlinedIPv6(b, off, end, &p)
        case IPProtocol.icmp, IPProtocol.icmpv6:
            p.layers.insert(.icmp)
            p.payloadOffset = off
            p.payloadLength = end - off
            return .complete
        default:
            p.note(.otherTransport)
            p.payloadOffset = off
            p.payloadLength = end - off
            return .complete
        }
    }

    // MARK: - Layer 4

    @inlinable @inline(__always)
    static func tcp(_ b: UnsafeRawBufferPointer, _ off: Int, _ end: Int, _ p: inout DecodedPacket) -> DecodeOutcome {
        guard off + 20 <= end else { return .malformed(.tcpTruncated) }
        let dataOffset = Int(b[off + 12] >> 4) &* 4
        guard dataOffset >= 20 else { return .malformed(.tcpBadDataOffset) }
        var optEnd = off + dataOffset
        if optEnd > end {
            // Options cut by the snap length (the IP header promised more than was captured): the fixed header is
            // whole, so keep the segment and read the options that are there. Otherwise the segment lies.
            guard p.has(.ipCapturedShort) else { return .malformed(.tcpTruncated) }
            optEnd = end
        }
        p.layers.insert(.tcp)
        p.sourcePort = u16(b, off)
        p.destinationPort = u16(b, off + 2)
        p.tcpSequence = u32(b, off + 4)
        p.tcpAcknowledgment = u32(b, off + 8)
        p.tcpFlags = b[off + 13]
        p.tcpWindow = u16(b, off + 14)
        p.payloadOffset = optEnd
        p.payloadLength = end - optEnd
        p.tcpMSS = 0
        p.tcpWindowScale = 0xff
        p.tcpSACKPermitted = false
        p.tcpTimestamp = false
        // Options: the ones the flow table uses are kept; any malformed length fails the packet (an option cut by
        // the snap length just ends the list).
        var o = off + 20
        while o < optEnd {
            let kind = b[o]
            if kind == 0 { break }
            if kind == 1 { o += 1; continue }
            let cut = optEnd < off + dataOffset
            guard o + 1 < optEnd else { if cut { break }; return .malformed(.tcpBadOptions) }
            let len = Int(b[o + 1])
            guard len >= 2 else { return .malformed(.tcpBadOptions) }
            guard o + len <= optEnd else { if cut { break }; return .malformed(.tcpBadOptions) }
            switch kind {
            case 2 where len == 4: p.tcpMSS = u16(b, o + 2)
            case 3 where len == 3: p.tcpWindowScale = b[o + 2]
            case 4 where len == 2: p.tcpSACKPermitted = true
            case 8 where len == 10: p.tcpTimestamp = true
            default: break
            }
            o += len
        }
        return .complete
    }

    /// UDP port of GTP-U (3GPP TS 29.281).
    public static let gtpuPort: UInt16 = 2152

    @inlinable @inline(__always)
    static func udp(_ b: UnsafeRawBufferPointer, _ off: Int, _ end: Int, _ p: inout DecodedPacket) -> DecodeOutcome {
        guard off + 8 <= end else { return .malformed(.udpTruncated) }
        let length = Int(u16(b, off + 4))
        guard length >= 8 else { return .malformed(.udpBadLength) }
        let declaredEnd = off + length
        var udpEnd = declaredEnd
        if udpEnd > end {
            p.note(.ipCapturedShort)
            udpEnd = end
        }
        p.layers.insert(.udp)
        p.sourcePort = u16(b, off)
        p.destinationPort = u16(b, off + 2)
        p.payloadOffset = off + 8
        p.payloadLength = udpEnd - (off + 8)
        if p.sourcePort == gtpuPort || p.destinationPort == gtpuPort {
            if let outcome = gtpu(b, off + 8, udpEnd, declaredEnd: declaredEnd, &p) { return outcome }
            p.note(.gtpuInvalidOnPort2152)  // left alone: plain UDP
        }
        return .complete
    }

    // MARK: - Tunnels

    /// GTP-U v1 (3GPP TS 29.281 section 5). Returns nil when the bytes are not GTP-U at all (so the UDP datagram is
    /// left alone); a GTP-U header that is broken past that point is malformed.
    @inlinable @inline(__always)
    static func gtpu(_ b: UnsafeRawBufferPointer, _ off: Int, _ end: Int, declaredEnd: Int, _ p: inout DecodedPacket)
        -> DecodeOutcome?
    {
        guard off + 8 <= end else { return nil }
        let flags = b[off]
        // version 1 and protocol type 1 (GTP, not GTP')
        guard flags >> 5 == 1, flags & 0x10 != 0 else { return nil }
        let messageType = b[off + 1]
        let length = Int(u16(b, off + 2))  // octets after the mandatory 8-byte header
        // GTP-U must fit the UDP datagram it claims to be in; the capture may hold less (snap length), and then
        // the inner packet is decoded as far as it was captured.
        guard off + 8 + length <= declaredEnd else { return nil }
        let gEnd = min(off + 8 + length, end)
        var cur = off + 8
        let teid = u32(b, off + 4)
        // From here on it is GTP-U.
        p.layers.insert(.gtpu)
        p.teid = teid
        p.hasTEID = true
        if flags & 0x07 != 0 {
            // E, S or PN: sequence number (2), N-PDU number (1) and next extension header type (1) are all present.
            guard cur + 4 <= gEnd else { return .malformed(.gtpuTruncated) }
            var nextType = b[cur + 3]
            cur += 4
            if flags & 0x04 == 0 { nextType = 0 }  // without E the field is not meaningful
            var hops = 0
            while nextType != 0 {
                guard cur < gEnd else { return .malformed(.gtpuBadExtension) }
                let extLen = Int(b[cur]) &* 4
                guard extLen > 0, cur + extLen <= gEnd else { return .malformed(.gtpuBadExtension) }
                nextType = b[cur + extLen - 1]
                cur += extLen
                hops += 1
                guard hops <= 32 else { return .malformed(.gtpuBadExtension) }
            }
        }
        guard messageType == 0xff else {
            // Echo, error indication, end marker...: signalling, nothing inside to decode.
            p.note(.gtpuSignalling)
            return .complete
        }
        guard cur < gEnd else { return .malformed(.gtpuUnknownPayload) }
        guard enterTunnel(&p) else { return .malformed(.tooManyEncapsulations) }
        switch b[cur] >> 4 {
        case 4: return outlinedIPv4(b, cur, gEnd, &p)
        case 6: return outlinedIPv6(b, cur, gEnd, &p)
        default: return .malformed(.gtpuUnknownPayload)
        }
    }

    /// GRE (RFC 2784/2890), PPTP's enhanced GRE (RFC 2637), and ERSPAN types I, II and III inside it.
    @inlinable @inline(__always)
    static func gre(_ b: UnsafeRawBufferPointer, _ off: Int, _ end: Int, _ p: inout DecodedPacket) -> DecodeOutcome {
        guard off + 4 <= end else { return .malformed(.greTruncated) }
        let flags = u16(b, off)
        let proto = u16(b, off + 2)
        let hasChecksum = flags & 0x8000 != 0
        let hasRouting = flags & 0x4000 != 0
        let hasKey = flags & 0x2000 != 0
        let hasSequence = flags & 0x1000 != 0
        var cur = off + 4
        switch flags & 0x7 {
        case 0:
            guard !hasRouting else { return .malformed(.greUnsupported) }  // RFC 1701 source routing
            if hasChecksum { cur += 4 }
            if hasKey { cur += 4 }
            if hasSequence { cur += 4 }
        case 1:
            guard hasKey, proto == 0x880b else { return .malformed(.greUnsupported) }
            cur += 4
            if hasSequence { cur += 4 }
            if flags & 0x0080 != 0 { cur += 4 }  // acknowledgment number
        default:
            return .malformed(.greUnsupported)
        }
        guard cur <= end else { return .malformed(.greTruncated) }
        guard enterTunnel(&p) else { return .malformed(.tooManyEncapsulations) }
        p.layers.insert(.gre)
        switch proto {
        case 0x0800: return outlinedIPv4(b, cur, end, &p)
        case 0x86dd: return outlinedIPv6(b, cur, end, &p)
        case 0x6558: return outlinedEthernet(b, cur, end, &p)  // transparent Ethernet bridging
        case 0x8847, 0x8848: return outlinedMPLS(b, cur, end, &p)
        case 0x880b: return outlinedPPP(b, cur, end, &p)
        case 0x88be:
            p.layers.insert(.erspan)
            guard hasSequence else { return outlinedEthernet(b, cur, end, &p) }  // type I: no ERSPAN header
            guard cur + 8 <= end else { return .malformed(.erspanTruncated) }  // type II: 8-byte header
            return outlinedEthernet(b, cur + 8, end, &p)
        case 0x22eb:
            p.layers.insert(.erspan)
            guard cur + 12 <= end else { return .malformed(.erspanTruncated) }  // type III: 12 bytes
            let hasPlatformSubheader = b[cur + 11] & 0x01 != 0
            let inner = cur + 12 + (hasPlatformSubheader ? 8 : 0)
            guard inner <= end else { return .malformed(.erspanTruncated) }
            return outlinedEthernet(b, inner, end, &p)
        default:
            p.note(.otherTransport)
            p.payloadOffset = cur
            p.payloadLength = end - cur
            return .complete
        }
    }
}
