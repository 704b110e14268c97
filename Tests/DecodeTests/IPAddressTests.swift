import Decode
import Testing

@Suite("IPAddress")
struct IPAddressTests {
    /// (text, canonical RFC 5952 text).
    static let roundTrips: [(String, String)] = [
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("192.0.2.1", "192.0.2.1"),
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("1:0:0:0:0:0:0:0", "1::"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),  // 4.1 leading zeros suppressed
        ("2001:DB8::AbCd", "2001:db8::abcd"),  // 4.3 lower case
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  // 4.2.2 no :: for a single zero group
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  // 4.2.3 first of equal runs
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),  // 4.2.3 the longest run
        ("2001:db8::0:1", "2001:db8::1"),
        ("0:1:2:3:4:5:6:7", "0:1:2:3:4:5:6:7"),
        ("1:2:3:4:5:6:7:0", "1:2:3:4:5:6:7:0"),
        ("1:2:3:4:5:6::8", "1:2:3:4:5:6:0:8"),
        ("fe80::", "fe80::"),
        ("ff02::1:ff00:1", "ff02::1:ff00:1"),
        ("2001:db8:85a3::8a2e:370:7334", "2001:db8:85a3::8a2e:370:7334"),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ]

    @Test("parse and format round trips (RFC 5952)", arguments: roundTrips)
    func roundTrip(_ text: String, _ canonical: String) throws {
        let a = try #require(IPAddress(text))
        #expect(a.description == canonical)
        #expect(IPAddress(canonical) == a)
        #expect(a.isIPv6 == text.contains(":"))
    }

    @Test("malformed text is refused", arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3", "1.2.3.", "1.2.3.4 ", "a.b.c.d", "1.2.3.-1", "1234.1.1.1",
        ":", ":::", "1::2::3", "12345::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7::8", "g::1", ":1::", "::1:", "1:::2", "::ffff:1.2.3.4x",
        // Ambiguous (octal in some parsers) or signed dotted quads.
        "010.000.000.001", "10.0.0.01", "00.1.2.3", "+1.2.3.4", "1.+2.3.4", "::ffff:010.1.2.3",
    ])
    func refused(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test("bytes are in network order")
    func bytes() {
        #expect(ip("192.0.2.1").bytes == [192, 0, 2, 1])
        #expect(ip("2001:db8::102").bytes == [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 10) + [1, 2])
        #expect(IPAddress(ipv4: 0x0a00_0001) == ip("10.0.0.1"))
        #expect(IPAddress.none.description == "0.0.0.0")
    }

    @Test("ordering puts IPv4 before IPv6")
    func ordering() {
        #expect(ip("10.0.0.1") < ip("10.0.0.2"))
        #expect(ip("255.255.255.255") < ip("::"))
        #expect(ip("2001:db8::1") < ip("2001:db8::2"))
        #expect(ip("2001:db8::ffff") < ip("2001:db9::"))
    }

    /// (address, prefix, length, inside).
    static let prefixes: [(String, String, Int, Bool)] = [
        ("10.1.2.3", "10.0.0.0", 8, true),
        ("10.1.2.3", "10.1.0.0", 16, true),
        ("10.1.2.3", "10.2.0.0", 16, false),
        ("10.1.2.3", "10.1.2.3", 32, true),
        ("10.1.2.3", "10.1.2.2", 32, false),
        ("10.1.2.3", "10.1.2.2", 31, true),
        ("10.1.2.3", "0.0.0.0", 0, true),
        ("192.168.1.1", "192.168.0.0", 23, true),
        ("192.168.2.1", "192.168.0.0", 23, false),
        ("255.255.255.255", "128.0.0.0", 1, true),
        ("127.255.255.255", "128.0.0.0", 1, false),
        ("10.1.2.3", "::", 0, false),
        ("::a01:203", "10.1.2.3", 32, false),
        ("2001:db8::1", "2001:db8::", 32, true),
        ("2001:db8::1", "2001:db9::", 32, false),
        ("2001:db8::1", "2001:db8::", 64, true),
        ("2001:db8::1", "2001:db8:0:1::", 64, false),
        ("2001:db8::1", "2001:db8::", 65, true),
        ("2001:db8::8000:0:0:1", "2001:db8::", 65, false),
        ("2001:db8::1", "2001:db8::1", 128, true),
        ("2001:db8::1", "2001:db8::", 128, false),
        ("2001:db8::1", "2001:db8::", 127, true),
        ("2001:db8::2", "2001:db8::", 127, false),
        ("2001:db8::1", "::", 0, true),
        ("2001:db8::1", "2000::", 3, true),
        ("4001:db8::1", "2000::", 3, false),
    ]

    @Test("prefix membership", arguments: prefixes)
    func prefix(_ address: String, _ prefix: String, _ length: Int, _ inside: Bool) {
        #expect(ip(address).isIn(prefix: ip(prefix), length: length) == inside)
    }

    /// (text, parsed prefix's text, or the error).
    static let prefixTexts: [(String, Result<String, IPPrefix.ParseError>)] = [
        ("10.45.0.0/16", .success("10.45.0.0/16")),
        ("10.45.0.7", .success("10.45.0.7/32")),
        ("2001:db8::/32", .success("2001:db8::/32")),
        ("2001:db8::1", .success("2001:db8::1/128")),
        ("0.0.0.0/0", .success("0.0.0.0/0")),
        ("10.0.0.0/33", .failure(.badLength(maximum: 32))),
        ("2001:db8::/129", .failure(.badLength(maximum: 128))),
        ("10.0.0.0/", .failure(.badLength(maximum: 32))),
        ("10.0.0.0/-1", .failure(.badLength(maximum: 32))),
        ("10.0.0.0/8/8", .failure(.badLength(maximum: 32))),
        ("example.net/8", .failure(.notAnAddress)),
        ("", .failure(.notAnAddress)),
    ]

    @Test("prefix parsing", arguments: prefixTexts)
    func prefixParsing(_ text: String, _ expected: Result<String, IPPrefix.ParseError>) {
        let parsed = Result { () throws(IPPrefix.ParseError) in try IPPrefix(parsing: text).description }
        #expect(parsed == expected, "\(text)")
    }

    @Test("a parsed prefix contains what isIn says")
    func prefixContains() throws {
        let p = try IPPrefix(parsing: "10.45.0.0/16")
        #expect(p.contains(ip("10.45.200.1")))
        #expect(!p.contains(ip("10.46.0.1")))
        #expect(!p.contains(ip("2001:db8::1")))
    }
}
