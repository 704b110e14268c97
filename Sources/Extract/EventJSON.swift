import Decode

// The JSON Lines encoding of events (../shared/EVENTS.md), written as bytes into a buffer the caller reuses: no
// String is built per event, so the sink's cost per event is a few hundred byte appends. `jsonLine()` is this
// encoding decoded as a String.

extension StateEvent {
    /// Appends the event as one JSON object (EVENTS.md; fields not known are omitted), without the newline.
    public func appendJSON(to out: inout [UInt8]) {
        out.appendASCII("{\"kind\":\"")
        out.appendASCII(kind == .webLink ? "web_link" : "server_name")
        out.appendASCII("\",\"ts\":")
        let seconds = timestampNanoseconds / 1_000_000_000, fraction = timestampNanoseconds % 1_000_000_000
        out.appendDecimal(seconds)
        out.append(0x2e)  // .
        out.appendDecimal(fraction, minimumDigits: 9)
        out.appendASCII(",\"device\":\"")
        out.appendAddress(device)
        out.appendASCII("\",\"client\":\"")
        out.appendEndpoint(client, clientPort)
        out.appendASCII("\",\"server\":\"")
        out.appendEndpoint(server, serverPort)
        out.append(0x22)
        if !vlans.isEmpty {
            out.appendASCII(",\"vlan\":[")
            for (i, v) in vlans.enumerated() {
                if i > 0 { out.append(0x2c) }
                out.appendDecimal(UInt64(v))
            }
            out.append(0x5d)
        }
        if let teid {
            out.appendASCII(",\"teid\":")
            out.appendDecimal(UInt64(teid))
        }
        withFieldIndex { index in
            func value(_ f: Field) -> UnsafeRawBufferPointer? { index.value(f) }
            if kind == .webLink {
                if let v = value(.method) { out.appendField("method", v) }
                if let v = value(.url) { out.appendField("url", v) }
                if let v = value(.host) { out.appendField("host", v) }
                if let v = value(.httpVersion) { out.appendField("version", v) }
                if let v = value(.hostFrom) { out.appendField("host_from", v) }
                if let v = value(.truncated), v.first == 1 { out.appendASCII(",\"truncated\":true") }
                if let status = index.u16(.status) {
                    out.appendASCII(",\"status\":")
                    out.appendDecimal(UInt64(status))
                }
                for (k, (_, field, numeric)) in Self.responseFields.enumerated() {
                    guard let v = index.header(Self.responseSlots[k]) else { continue }
                    if numeric {
                        // As `Int(v.trimmingSpaces())` reads it: omitted when it is not a number.
                        guard let n = decimalInt(v) else { continue }
                        out.appendASCII(",\"")
                        out.appendASCII(field)
                        out.appendASCII("\":")
                        out.appendDecimal(n)
                    } else {
                        out.appendField(field, v)
                    }
                }
                if let c = index.bool(.cacheable) {
                    out.appendASCII(c ? ",\"cacheable\":true" : ",\"cacheable\":false")
                }
                if let v = value(.proxy) { out.appendField("proxy", v) }
                // Read from inside TLS (HTTPS): the transport and the connection's ALPN.
                if let v = value(.transport), !v.isEmpty { out.appendField("transport", v) }
                if let v = value(.alpn) { out.appendField("alpn", v) }  // the connection's one protocol (the last set)
            }
            if kind == .serverName {
                out.appendField("transport", value(.transport) ?? UnsafeRawBufferPointer(start: nil, count: 0))
                if let v = value(.serverName) { out.appendField("sni", v) }
                out.appendASCII(",\"alpn\":[")
                var first = true
                forEachField { t, v in
                    guard t == Field.alpn.rawValue else { return }
                    if !first { out.append(0x2c) }
                    first = false
                    out.appendJSONString(v)
                }
                out.append(0x5d)
                first = true
                forEachField { t, v in
                    guard t == Field.tlsVersion.rawValue, v.count == 2 else { return }
                    out.appendASCII(first ? ",\"tls_versions\":[\"" : ",\"")
                    first = false
                    out.appendTLSVersionName(UInt16(v[0]) | UInt16(v[1]) << 8)
                    out.append(0x22)
                }
                if !first { out.append(0x5d) }
                if let v = value(.quicVersion), v.count == 4 {
                    // Stored little endian; written most significant byte first.
                    out.appendASCII(",\"quic_version\":\"0x")
                    for k in (0..<4).reversed() { out.appendHex2(v[k]) }
                    out.append(0x22)
                }
                if let v = value(.dcid), !v.isEmpty {
                    out.appendASCII(",\"dcid\":\"")
                    for b in v { out.appendHex2(b) }
                    out.append(0x22)
                }
                if let v = value(.encryptedClientHello), v.first == 1 { out.appendASCII(",\"ech\":true") }
            }
        }
        out.append(0x7d)  // }
    }
}

/// `Int(text)` after trimming spaces and tabs, without making Strings: an optional sign, then at least one ASCII
/// digit and nothing else; nil when it is not such a number or overflows `Int`.
func decimalInt(_ text: String) -> Int? {
    withUTF8(text) { decimalInt($0) }
}

/// `decimalInt` of UTF-8 bytes.
func decimalInt(_ text: UnsafeRawBufferPointer) -> Int? {
    var s = text[...]
    while let f = s.first, f == 0x20 || f == 0x09 { s = s.dropFirst() }
    while let l = s.last, l == 0x20 || l == 0x09 { s = s.dropLast() }
    var negative = false
    if let f = s.first, f == 0x2b || f == 0x2d {
        negative = f == 0x2d
        s = s.dropFirst()
    }
    guard !s.isEmpty else { return nil }
    var magnitude: UInt64 = 0
    for c in s {
        guard c >= 0x30 && c <= 0x39 else { return nil }
        let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
        let (a, o2) = m.addingReportingOverflow(UInt64(c - 0x30))
        guard !o1 && !o2 else { return nil }
        magnitude = a
    }
    if negative {
        guard magnitude <= UInt64(Int.max) + 1 else { return nil }
        return magnitude == UInt64(Int.max) + 1 ? Int.min : -Int(magnitude)
    }
    guard magnitude <= UInt64(Int.max) else { return nil }
    return Int(magnitude)
}

/// True when `bytes` are valid UTF-8 (what a String made from them would hold unchanged).
package func validUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var it = bytes.makeIterator()
    var decoder = UTF8()
    while true {
        switch decoder.decode(&it) {
        case .scalarValue: continue
        case .emptyInput: return true
        case .error: return false
        }
    }
}

extension [UInt8] {
    @inline(__always)
    mutating func appendASCII(_ s: StaticString) {
        append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    @inline(__always)
    mutating func appendASCII(_ s: String) {
        var s = s
        s.withUTF8 { append(contentsOf: $0) }
    }

    /// `,"name":` and `value` as a JSON string.
    mutating func appendField(_ name: StaticString, _ value: String) {
        withUTF8(value) { appendField(name, $0) }
    }

    /// `,"name":` and the UTF-8 bytes `value` as a JSON string.
    mutating func appendField(_ name: StaticString, _ value: UnsafeRawBufferPointer) {
        append(0x2c)
        append(0x22)
        appendASCII(name)
        append(0x22)
        append(0x3a)
        appendJSONString(value)
    }

    /// A JSON string literal: `"` and `\` escaped, control characters as \n \r \t or \u00XX, every other byte as
    /// it is (a Swift String is valid UTF-8, so multi-byte scalars pass through whole).
    mutating func appendJSONString(_ s: String) {
        withUTF8(s) { appendJSONString($0) }
    }

    /// `appendJSONString` of UTF-8 bytes (an event's field). Bytes that are not valid UTF-8 (a damaged or crafted
    /// journal record) are repaired as `String(decoding:as:)` repairs them, so the output is always UTF-8.
    mutating func appendJSONString(_ bytes: UnsafeRawBufferPointer) {
        var ascii = true
        for b in bytes where b >= 0x80 { ascii = false; break }
        if ascii || validUTF8(bytes) {
            appendEscaped(bytes)
        } else {
            var repaired = String(decoding: bytes, as: UTF8.self)
            repaired.withUTF8 { appendEscaped(UnsafeRawBufferPointer($0)) }
        }
    }

    private mutating func appendEscaped(_ bytes: UnsafeRawBufferPointer) {
        append(0x22)
        do {
            var run = 0  // start of the bytes not yet copied
            for i in 0..<bytes.count {
                let c = bytes[i]
                guard c < 0x20 || c == 0x22 || c == 0x5c else { continue }
                if i > run { append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[run..<i])) }
                run = i + 1
                switch c {
                case 0x22: append(0x5c); append(0x22)
                case 0x5c: append(0x5c); append(0x5c)
                case 0x0a: append(0x5c); append(0x6e)
                case 0x0d: append(0x5c); append(0x72)
                case 0x09: append(0x5c); append(0x74)
                default:
                    appendASCII("\\u00")
                    appendHex2(c)
                }
            }
            if bytes.count > run { append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[run..<bytes.count])) }
        }
        append(0x22)
    }

    @inline(__always)
    mutating func appendHex2(_ b: UInt8) {
        append(hexDigit(b >> 4))
        append(hexDigit(b & 15))
    }

    /// Decimal digits of `v`, zero-padded on the left to `minimumDigits` (at most 20).
    mutating func appendDecimal(_ v: UInt64, minimumDigits: Int = 1) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for the 20 digits of UInt64.max
        Swift.withUnsafeMutableBytes(of: &digits) { buf in
            var n = v, i = buf.count
            repeat {
                i -= 1
                buf[i] = UInt8(truncatingIfNeeded: n % 10) &+ 0x30
                n /= 10
            } while n > 0
            while buf.count - i < minimumDigits && i > 0 {
                i -= 1
                buf[i] = 0x30
            }
            append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[i...]))
        }
    }

    mutating func appendDecimal(_ v: Int) {
        if v < 0 { append(0x2d) }
        appendDecimal(UInt64(v.magnitude))
    }

    /// Dotted quad, or RFC 5952 IPv6 text, as `IPAddress.description` writes it.
    mutating func appendAddress(_ a: IPAddress) {
        if !a.isIPv6 {
            let v = UInt32(truncatingIfNeeded: a.low)
            appendDecimal(UInt64(v >> 24)); append(0x2e)
            appendDecimal(UInt64((v >> 16) & 0xff)); append(0x2e)
            appendDecimal(UInt64((v >> 8) & 0xff)); append(0x2e)
            appendDecimal(UInt64(v & 0xff))
            return
        }
        func group(_ i: Int) -> UInt16 {
            i < 4 ? UInt16(truncatingIfNeeded: a.high >> UInt64(48 - 16 * i))
                : UInt16(truncatingIfNeeded: a.low >> UInt64(48 - 16 * (i - 4)))
        }
        // Longest run of at least two zero groups, first one on ties.
        var bestStart = -1, bestLen = 0, i = 0
        while i < 8 {
            if group(i) == 0 {
                var j = i
                while j < 8 && group(j) == 0 { j += 1 }
                if j - i > bestLen && j - i >= 2 { bestStart = i; bestLen = j - i }
                i = j
            } else { i += 1 }
        }
        let start = count
        i = 0
        while i < 8 {
            if i == bestStart {
                append(0x3a); append(0x3a)
                i += bestLen
                continue
            }
            if count > start && self[count - 1] != 0x3a { append(0x3a) }
            let g = group(i)
            var shift = 12
            while shift > 0 && (g >> UInt16(shift)) == 0 { shift -= 4 }
            while shift >= 0 {
                append(hexDigit(UInt8(truncatingIfNeeded: g >> UInt16(shift)) & 15))
                shift -= 4
            }
            i += 1
        }
    }

    /// `ADDRESS:PORT`, IPv6 as `[ADDRESS]:PORT`.
    mutating func appendEndpoint(_ a: IPAddress, _ port: UInt16) {
        if a.isIPv6 { append(0x5b) }
        appendAddress(a)
        if a.isIPv6 { append(0x5d) }
        append(0x3a)
        appendDecimal(UInt64(port))
    }

    mutating func appendTLSVersionName(_ v: UInt16) {
        switch v {
        case 0x0304: appendASCII("TLS 1.3")
        case 0x0303: appendASCII("TLS 1.2")
        case 0x0302: appendASCII("TLS 1.1")
        case 0x0301: appendASCII("TLS 1.0")
        case 0x0300: appendASCII("SSL 3.0")
        default:
            if v >> 8 == 0x7f {
                appendASCII("TLS 1.3 draft ")
                appendDecimal(UInt64(v & 0xff))
            } else {
                appendASCII("0x")
                appendHex2(UInt8(v >> 8))
                appendHex2(UInt8(v & 0xff))
            }
        }
    }
}

@inline(__always)
private func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 0x30 &+ v : 0x57 &+ v }
