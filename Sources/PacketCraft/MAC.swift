/// A 48-bit Ethernet MAC address.
public struct MAC: Hashable, Sendable, CustomStringConvertible {
    /// The address in the low 48 bits (00:11:22:33:44:55 is 0x0011_2233_4455).
    public var value: UInt64

    /// An address from its 48-bit value; higher bits are ignored.
    public init(_ value: UInt64) { self.value = value & 0xffff_ffff_ffff }

    /// An address from its six bytes, in transmission order.
    public init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8, _ b4: UInt8, _ b5: UInt8) {
        self.value = [b0, b1, b2, b3, b4, b5].reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Parses "aa:bb:cc:dd:ee:ff" (or with "-" separators); nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(omittingEmptySubsequences: false) { $0 == ":" || $0 == "-" }
        guard parts.count == 6 else { return nil }
        var v: UInt64 = 0
        for part in parts {
            guard part.count == 2, let byte = UInt8(part, radix: 16) else { return nil }
            v = v << 8 | UInt64(byte)
        }
        self.value = v
    }

    /// The six bytes in transmission order.
    public var bytes: [UInt8] { (0..<6).map { UInt8(truncatingIfNeeded: value >> UInt64(40 - 8 * $0)) } }

    /// Lower-case colon-separated text.
    public var description: String {
        bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: ":")
    }

    /// 00:00:00:00:00:00.
    public static let zero = MAC(0)
    /// ff:ff:ff:ff:ff:ff.
    public static let broadcast = MAC(0xffff_ffff_ffff)
    /// The default source address of built frames (locally administered 02:00:00:00:00:01).
    public static let defaultSource = MAC(0x0200_0000_0001)
    /// The default destination address of built frames (locally administered 02:00:00:00:00:02).
    public static let defaultDestination = MAC(0x0200_0000_0002)
}
