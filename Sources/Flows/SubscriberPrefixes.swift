import Decode

/// Address prefixes that name the device (subscriber) side of flows, e.g. `10.45.0.0/16` or `2001:db8::/32`.
public struct SubscriberPrefixes: Sendable {
    public private(set) var prefixes: [IPPrefix] = []

    public init() {}

    /// Parses `ADDRESS/LENGTH` (or a bare address, meaning a host prefix); throws a message that says what is wrong.
    public mutating func add(_ text: String) throws(PrefixError) {
        do throws(IPPrefix.ParseError) {
            prefixes.append(try IPPrefix(parsing: text))
        } catch {
            switch error {
            case .notAnAddress: throw PrefixError(text: text, reason: "not an IP address")
            case .badLength(let maximum): throw PrefixError(text: text, reason: "prefix length must be 0...\(maximum)")
            }
        }
    }

    public var isEmpty: Bool { prefixes.isEmpty }

    /// Whether `address` belongs to a subscriber prefix.
    @inlinable public func contains(_ address: IPAddress) -> Bool {
        for p in prefixes where p.contains(address) { return true }
        return false
    }

    public struct PrefixError: Error, CustomStringConvertible {
        public let text: String
        public let reason: String
        public var description: String { "invalid subscriber prefix '\(text)': \(reason)" }
    }
}
