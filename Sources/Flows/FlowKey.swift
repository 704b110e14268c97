import Decode

/// A bidirectional flow identity: the innermost 5-tuple with endpoints in a canonical order, plus the encapsulation
/// context (VLAN ids, and the tunnel endpoint pair when tunnelled).
///
/// GTP-U uses a different TEID in each direction, so a TEID cannot be part of a key that both directions share;
/// the tunnel context is the (canonically ordered) pair of tunnel endpoints instead, and each flow keeps the TEID
/// seen in each direction.
public struct FlowKey: Hashable, Sendable, BitwiseCopyable {
    /// Endpoint A is the lower (address, port) of the two.
    public var addressA: IPAddress
    public var addressB: IPAddress
    public var portA: UInt16
    public var portB: UInt16
    public var ipProtocol: UInt8
    /// Up to four VLAN ids packed 16 bits each (outermost in the high bits) and how many there were.
    public var vlans: UInt64
    public var vlanCount: UInt8
    /// Innermost tunnel endpoints, canonical order (both `.none` when not tunnelled).
    public var tunnelA: IPAddress
    public var tunnelB: IPAddress

    /// Builds the key of `p`; `sourceIsA` tells whether the packet's source is endpoint A.
    @inlinable
    public init(_ p: borrowing DecodedPacket, sourceIsA: inout Bool) {
        let s = (p.source, p.sourcePort), d = (p.destination, p.destinationPort)
        sourceIsA = s.0 < d.0 || (s.0 == d.0 && s.1 <= d.1)
        if sourceIsA {
            addressA = s.0; portA = s.1; addressB = d.0; portB = d.1
        } else {
            addressA = d.0; portA = d.1; addressB = s.0; portB = s.1
        }
        ipProtocol = p.ipProtocol
        vlans = p.packedVLANs
        vlanCount = p.vlanCount
        if p.tunnelDepth > 0 {
            if p.tunnelSource < p.tunnelDestination {
                tunnelA = p.tunnelSource; tunnelB = p.tunnelDestination
            } else {
                tunnelA = p.tunnelDestination; tunnelB = p.tunnelSource
            }
        } else {
            tunnelA = .none; tunnelB = .none
        }
    }

    /// A hash that is the same for both directions of a flow (used to shard flows across workers and to index
    /// the flow table). Computed from the canonical key, so it is symmetric by construction.
    @inlinable
    public var symmetricHash: UInt64 {
        var h: UInt64 = 0x9e37_79b9_7f4a_7c15
        @inline(__always) func mix(_ v: UInt64) {
            h = (h ^ v) &* 0xbf58_476d_1ce4_e5b9
            h ^= h >> 31
        }
        mix(addressA.high); mix(addressA.low); mix(addressB.high); mix(addressB.low)
        mix(UInt64(portA) << 32 | UInt64(portB) << 16 | UInt64(ipProtocol) << 8 | UInt64(vlanCount))
        mix(vlans)
        mix(tunnelA.low ^ tunnelB.low &* 31 ^ tunnelA.high ^ tunnelB.high)
        return h ^ (h >> 29)
    }

    /// The worker (of `count`) that owns this flow. Uses the hash's high bits: the flow table indexes with the low
    /// bits, and sharding on them too would leave each worker's table using only 1/count of its home slots.
    @inlinable
    public func shard(of count: Int) -> Int {
        Int((symmetricHash >> 32) &* UInt64(count) >> 32)
    }
}
