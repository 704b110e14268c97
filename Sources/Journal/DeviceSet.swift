import Decode

/// A set of device addresses that numbers its members in insertion order, for the journal thread's per-batch and
/// per-segment device lists (every record passes through it). Open addressing with a multiplicative hash instead
/// of `Set`'s SipHash (a third of the journal thread's time went to hashing devices): devices are subscriber
/// addresses inside the configured prefixes, not keys an outsider picks freely.
///
/// A slot holds the address itself, so a lookup touches one cache line (with the address only in `members`, a
/// lookup missed twice: perf showed those loads as most of a batch's bookkeeping), and the generation it was
/// filled in: emptying the set bumps the generation instead of clearing the table.
struct DeviceSet {
    private struct Slot {
        var high: UInt64 = 0
        var low: UInt64 = 0
        /// The set's generation when filled; a slot of an older generation is empty.
        var generation: UInt32 = 0
        /// Number in `members`, with bit 31 set for IPv6.
        var number: UInt32 = 0
    }

    /// Members in insertion order.
    private(set) var members: [IPAddress] = []
    private var slots: [Slot]
    private var mask: Int
    private var generation: UInt32 = 1

    init(capacity: Int = 1024) {
        var n = 16
        while n < capacity * 2 { n <<= 1 }
        slots = [Slot](repeating: Slot(), count: n)
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
        let v6: UInt32 = device.isIPv6 ? 1 << 31 : 0
        var i = Self.hash(device) & mask
        return slots.withUnsafeMutableBufferPointer { s in
            while true {
                if s[i].generation != generation {
                    let k = members.count
                    members.append(device)
                    s[i] = Slot(high: device.high, low: device.low, generation: generation, number: UInt32(k) | v6)
                    return k
                }
                if s[i].low == device.low && s[i].high == device.high && s[i].number & (1 << 31) == v6 {
                    return Int(s[i].number & ~(1 << 31))
                }
                i = (i + 1) & mask
            }
        }
    }

    /// Empties the set, keeping its storage.
    mutating func removeAll() {
        guard !members.isEmpty else { return }
        members.removeAll(keepingCapacity: true)
        generation &+= 1
        if generation == 0 {
            // Wrapped after 4 billion clears: slots of generation 1 must not look filled.
            for i in slots.indices { slots[i].generation = 0 }
            generation = 1
        }
    }

    private mutating func grow() {
        let n = slots.count * 2
        slots = [Slot](repeating: Slot(), count: n)
        mask = n - 1
        generation = 1
        for (k, device) in members.enumerated() {
            var i = Self.hash(device) & mask
            while slots[i].generation == generation { i = (i + 1) & mask }
            slots[i] = Slot(high: device.high, low: device.low, generation: generation,
                            number: UInt32(k) | (device.isIPv6 ? 1 << 31 : 0))
        }
    }
}
