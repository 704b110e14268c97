import Decode

/// Device addresses → values, for the journal thread's per-batch and per-segment device lists (every record
/// passes through it). Open addressing with a multiplicative hash instead of `Dictionary`'s SipHash (a third of
/// the journal thread's time went to hashing devices): devices are subscriber addresses inside the configured
/// prefixes, not keys an outsider picks freely, and the table is cleared with each batch or segment.
struct DeviceTable<Value> {
    /// Keys in insertion order, and their values.
    private(set) var keys: [IPAddress] = []
    private(set) var values: [Value] = []
    /// Index into `keys` + 1, 0 for an empty slot.
    private var slots: [Int32]
    private var mask: Int

    init(capacity: Int = 1024) {
        var n = 16
        while n < capacity * 2 { n <<= 1 }
        slots = [Int32](repeating: 0, count: n)
        mask = n - 1
    }

    var count: Int { keys.count }
    var isEmpty: Bool { keys.isEmpty }

    @inline(__always) private static func hash(_ a: IPAddress) -> Int {
        var h = a.low &* 0x9E37_79B9_7F4A_7C15 ^ (a.high &+ (a.isIPv6 ? 1 : 0)) &* 0xC2B2_AE3D_27D4_EB4F
        h ^= h >> 31
        return Int(truncatingIfNeeded: h)
    }

    /// The index of `key` in `keys`/`values`, inserted with `make()` when absent.
    @inline(__always)
    mutating func index(of key: IPAddress, orInsert make: () -> Value) -> Int {
        if (keys.count + 1) * 2 > slots.count { grow() }
        var i = Self.hash(key) & mask
        while true {
            let s = Int(slots[i])
            if s == 0 {
                keys.append(key)
                values.append(make())
                slots[i] = Int32(keys.count)
                return keys.count - 1
            }
            if keys[s - 1] == key { return s - 1 }
            i = (i + 1) & mask
        }
    }

    mutating func insert(_ key: IPAddress) where Value == Void {
        _ = index(of: key, orInsert: {})
    }

    /// Empties the table, keeping its storage.
    mutating func removeAll() {
        guard !keys.isEmpty else { return }
        keys.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        for i in slots.indices { slots[i] = 0 }
    }

    private mutating func grow() {
        let n = slots.count * 2
        slots = [Int32](repeating: 0, count: n)
        mask = n - 1
        for (k, key) in keys.enumerated() {
            var i = Self.hash(key) & mask
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = Int32(k + 1)
        }
    }
}
