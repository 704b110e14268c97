import Decode

/// Address prefixes that name the device (subscriber) side of flows, e.g. `10.45.0.0/16` or `2001:db8::/32`.
public struct SubscriberPrefixes: Sendable {
    public struct Prefix: Sendable, CustomStringConvertible {
        public let address: IPAddress
        public let length: Int
        public var description: String { "\(address)/\(length)" }
    }
    public private(set) var prefixes: [Prefix] = []

    public init() {}

    /// Parses `ADDRESS/LENGTH` (or a bare address, meaning a host prefix); throws a message that says what is wrong.
    public mutating func add(_ text: String) throws(PrefixError) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { throw PrefixError(text: text, reason: "not an IP address") }
        let maxLength = address.isIPv6 ? 128 : 32
        var length = maxLength
        if parts.count == 2 {
            guard let l = Int(parts[1]), (0...maxLength).contains(l) else {
                throw PrefixError(text: text, reason: "prefix length must be 0...\(maxLength)")
            }
            length = l
        }
        prefixes.append(Prefix(address: address, length: length))
    }

    public var isEmpty: Bool { prefixes.isEmpty }

    /// Whether `address` belongs to a subscriber prefix.
    @inlinable public func contains(_ address: IPAddress) -> Bool {
        for p in prefixes where address.isIn(prefix: p.address, length: p.length) { return true }
        return false
    }

    public struct PrefixError: Error, CustomStringConvertible {
        public let text: String
        public let reason: String
        public var description: String { "invalid subscriber prefix '\(text)': \(reason)" }
    }
}
