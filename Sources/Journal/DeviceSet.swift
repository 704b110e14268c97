import Decode

/// A set of device addresses that numbers its members in insertion order, for the journal thread's per-batch and
/// per-segment device lists (every record passes through it). Open addressing with a multiplicative hash instead
/// of `Set`'s SipHash (a third of the journal thread's time went to hashing devices): devices are subscriber
/// addresses inside the configured prefixes, not keys an outsider picks freely, and the set is cleared with each
/// batch or segment.
struct DeviceSet {
    /// Members in insertion order.
    private(set) var members: [IPAddress] = []
    /// Index into `members` + 1, 0 for an empty slot.
    private var slots: [Int32]
    private var mask: Int

    init(capacity: Int = 1024) {
        var n = 16
        while n < capacity * 2 { n <<= 1 }
        slots = [Int32](repeating: 0, count: n)
        mask = n - 1
    }

    @inline(__always) private static func hash(_ a: IPAddress) -> Int {
        var h = a.low &* 0x9E37_79B9_7F4A_7C15 ^ (a.high &+ (a.isIPv6 ? 1 : 0)) &* 0xC2B2_AE3D_27D4_EB4F
        h ^= h >> 31
        return Int(truncatingIfNeeded: h)
    }

    /// The number of `device` in `members`, inserting it when absent.
    @inline(__always) @discardableResult
    mutating func insert(_ device: IPAddress) -> Int {
        if (members.count + 1) * 2 > slots.count { grow() }
        var i = Self.hash(device) & mask
        while true {
            let s = Int(slots[i])
            if s == 0 {
                members.append(device)
                slots[i] = Int32(members.count)
                return members.count - 1
            }
            if members[s - 1] == device { return s - 1 }
            i = (i + 1) & mask
        }
    }

    /// Empties the set, keeping its storage.
    mutating func removeAll() {
        guard !members.isEmpty else { return }
        members.removeAll(keepingCapacity: true)
        for i in slots.indices { slots[i] = 0 }
    }

    private mutating func grow() {
        let n = slots.count * 2
        slots = [Int32](repeating: 0, count: n)
        mask = n - 1
        for (k, device) in members.enumerated() {
            var i = Self.hash(device) & mask
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = Int32(k + 1)
        }
    }
}
