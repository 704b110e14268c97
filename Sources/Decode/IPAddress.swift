/// An IPv4 or IPv6 address held inline (no allocation). IPv4 addresses live in the low 32 bits of `low`.
public struct IPAddress: Hashable, Sendable, Comparable, BitwiseCopyable {
    /// Upper 64 bits of an IPv6 address (network order as a big-endian integer); 0 for IPv4.
    public var high: UInt64
    /// Lower 64 bits of an IPv6 address, or the IPv4 address in the low 32 bits.
    public var low: UInt64
    /// True for IPv6.
    public var isIPv6: Bool

    @inlinable public init(high: UInt64, low: UInt64, isIPv6: Bool) {
        self.high = high; self.low = low; self.isIPv6 = isIPv6
    }
    /// An IPv4 address from its 32-bit value (host order, i.e. 10.0.0.1 is 0x0a000001).
    @inlinable public init(ipv4 value: UInt32) { self.init(high: 0, low: UInt64(value), isIPv6: false) }
    /// The unspecified address.
    public static let none = IPAddress(high: 0, low: 0, isIPv6: false)

    @inlinable public static func < (a: IPAddress, b: IPAddress) -> Bool {
        if a.isIPv6 != b.isIPv6 { return !a.isIPv6 }
        if a.high != b.high { return a.high < b.high }
        return a.low < b.low
    }

    /// The 16 bytes of an IPv6 address, or 4 for IPv4, in network order.
    public var bytes: [UInt8] {
        if !isIPv6 { return withUnsafeBytes(of: UInt32(truncatingIfNeeded: low).bigEndian) { Array($0) } }
        return withUnsafeBytes(of: high.bigEndian) { Array($0) } + withUnsafeBytes(of: low.bigEndian) { Array($0) }
    }

    /// Whether this address lies inside `prefix`/`length` (same family only).
    @inlinable public func isIn(prefix: IPAddress, length: Int) -> Bool {
        guard isIPv6 == prefix.isIPv6 else { return false }
        if !isIPv6 {
            guard length > 0 else { return true }
            let mask: UInt32 = length >= 32 ? ~0 : ~(UInt32.max >> UInt32(length))
            return UInt32(truncatingIfNeeded: low) & mask == UInt32(truncatingIfNeeded: prefix.low) & mask
        }
        func m(_ bits: Int) -> UInt64 { bits <= 0 ? 0 : bits >= 64 ? ~0 : ~(UInt64.max >> UInt64(bits)) }
        return high & m(length) == prefix.high & m(length) && low & m(length - 64) == prefix.low & m(length - 64)
    }
}

extension IPAddress: CustomStringConvertible {
    /// Dotted quad for IPv4; RFC 5952 text (lower case, longest zero run compressed) for IPv6.
    public var description: String {
        if !isIPv6 {
            let v = UInt32(truncatingIfNeeded: low)
            return "\(v >> 24).\((v >> 16) & 0xff).\((v >> 8) & 0xff).\(v & 0xff)"
        }
        var groups = [UInt16](repeating: 0, count: 8)
        for i in 0..<4 {
            groups[i] = UInt16(truncatingIfNeeded: high >> UInt64(48 - 16 * i))
            groups[i + 4] = UInt16(truncatingIfNeeded: low >> UInt64(48 - 16 * i))
        }
        // Longest run of at least two zero groups, first one on ties.
        var bestStart = -1, bestLen = 0, i = 0
        while i < 8 {
            if groups[i] == 0 {
                var j = i
                while j < 8 && groups[j] == 0 { j += 1 }
                if j - i > bestLen && j - i >= 2 { bestStart = i; bestLen = j - i }
                i = j
            } else { i += 1 }
        }
        var out = ""
        i = 0
        while i < 8 {
            if i == bestStart {
                out += "::"
                i += bestLen
                continue
            }
            if !out.isEmpty && !out.hasSuffix(":") { out += ":" }
            out += String(groups[i], radix: 16)
            i += 1
        }
        return out
    }

    /// Parses dotted-quad IPv4 or textual IPv6 (with `::`); nil when malformed.
    public init?(_ text: String) {
        if text.contains(":") {
            // Split once around "::" (at most one allowed), then each side on ":".
            let halves = text.components(separatedByDoubleColon: ())
            guard halves.count <= 2 else { return nil }
            func groups(_ s: Substring) -> [UInt16]? {
                if s.isEmpty { return [] }
                var out: [UInt16] = []
                for g in s.split(separator: ":" as Character, omittingEmptySubsequences: false) {
                    guard !g.isEmpty, g.count <= 4, let v = UInt16(g, radix: 16) else { return nil }
                    out.append(v)
                }
                return out
            }
            guard let head = groups(halves[0]) else { return nil }
            let tail: [UInt16]
            if halves.count == 2 {
                guard let t = groups(halves[1]), head.count + t.count < 8 else { return nil }
                tail = t
            } else {
                guard head.count == 8 else { return nil }
                tail = []
            }
            let all = head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
            var hi: UInt64 = 0, lo: UInt64 = 0
            for k in 0..<4 { hi = hi << 16 | UInt64(all[k]); lo = lo << 16 | UInt64(all[k + 4]) }
            self.init(high: hi, low: lo, isIPv6: true)
        } else {
            let parts = text.split(separator: "." as Character, omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var v: UInt32 = 0
            for part in parts {
                // Decimal digits only, no leading zero (RFC 6943 §3.1.1: `010` reads as octal 8 in some parsers,
                // 10 in others; an ambiguous address is refused), no sign.
                guard !part.isEmpty, part.count <= 3, part.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                      part.count == 1 || part.utf8.first != 48, let byte = UInt8(part)
                else { return nil }
                v = v << 8 | UInt32(byte)
            }
            self.init(ipv4: v)
        }
    }
}

extension String {
    /// Splits on "::" (no Foundation): returns 1 piece when absent, 2 when present once, more when repeated.
    fileprivate func components(separatedByDoubleColon _: ()) -> [Substring] {
        var pieces: [Substring] = []
        var start = startIndex
        var i = startIndex
        while i < endIndex {
            let n = index(after: i)
            if self[i] == ":" && n < endIndex && self[n] == ":" {
                pieces.append(self[start..<i])
                start = index(after: n)
                i = start
            } else {
                i = n
            }
        }
        pieces.append(self[start..<endIndex])
        return pieces
    }
}

/// An address prefix, `ADDRESS/LENGTH` (e.g. `10.45.0.0/16`, `2001:db8::/32`); a bare address is a host prefix.
public struct IPPrefix: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let length: Int

    /// Why a text is not a prefix.
    public enum ParseError: Error, Sendable, Equatable {
        case notAnAddress
        /// The length is not a number in 0...`maximum` (32 for IPv4, 128 for IPv6).
        case badLength(maximum: Int)
    }

    public init(address: IPAddress, length: Int) {
        self.address = address
        self.length = length
    }

    /// Parses `ADDRESS/LENGTH` or a bare address.
    public init(parsing text: String) throws(ParseError) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { throw .notAnAddress }
        let maxLength = address.isIPv6 ? 128 : 32
        var length = maxLength
        if parts.count == 2 {
            guard let l = Int(parts[1]), (0...maxLength).contains(l) else { throw .badLength(maximum: maxLength) }
            length = l
        }
        self.init(address: address, length: length)
    }

    /// Whether `other` is inside this prefix.
    @inlinable public func contains(_ other: IPAddress) -> Bool { other.isIn(prefix: address, length: length) }

    public var description: String { "\(address)/\(length)" }
}
