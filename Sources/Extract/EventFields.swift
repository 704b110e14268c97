#if canImport(Glibc)
import Glibc
#endif

// The fields of a `StateEvent`, read and written in its byte buffer. `forEachField`, `withField` and `FieldIndex`
// (one pass, for readers of many fields: the JSON writer, the state store) read them where they lie; the
// properties are the typed view that builders and tests use.

extension StateEvent {
    /// Calls `body` with each field's tag and bytes, in order. The bytes are valid only inside `body`.
    @inline(__always)
    public func forEachField(_ body: (UInt8, UnsafeRawBufferPointer) -> Void) {
        fields.withUnsafeBytes { raw in
            var at = 0
            while at + 3 <= raw.count {
                let n = Int(raw[at + 1]) | Int(raw[at + 2]) << 8
                guard at + 3 + n <= raw.count else { return }  // never: `fields` is always whole
                body(raw[at], UnsafeRawBufferPointer(rebasing: raw[at + 3..<at + 3 + n]))
                at += 3 + n
            }
        }
    }

    /// Calls `body` with the bytes of the last `tag` field (the value a field set twice holds); nil when absent.
    public func withField<R>(_ tag: Field, _ body: (UnsafeRawBufferPointer) -> R) -> R? {
        fields.withUnsafeBytes { raw in
            var found: Range<Int>?
            var at = 0
            while at + 3 <= raw.count {
                let n = Int(raw[at + 1]) | Int(raw[at + 2]) << 8
                guard at + 3 + n <= raw.count else { break }
                if raw[at] == tag.rawValue { found = at + 3..<at + 3 + n }
                at += 3 + n
            }
            return found.map { body(UnsafeRawBufferPointer(rebasing: raw[$0])) }
        }
    }

    /// Calls `body` with an index of the fields, made in one pass (readers of many fields: the JSON writer, the
    /// state store). Valid only inside `body`.
    @inline(__always)
    package func withFieldIndex<R>(_ body: (FieldIndex) -> R) -> R {
        fields.withUnsafeBytes { body(FieldIndex($0)) }
    }

    /// True when `raw` is a sequence of whole fields.
    static func whole(_ raw: UnsafeRawBufferPointer) -> Bool {
        var at = 0
        while at < raw.count {
            guard at + 3 <= raw.count else { return false }
            at += 3 + (Int(raw[at + 1]) | Int(raw[at + 2]) << 8)
        }
        return at == raw.count
    }

    // MARK: - Writing

    /// Removes every `tag` field.
    private mutating func remove(_ tag: Field) {
        var present = false
        forEachField { t, _ in present = present || t == tag.rawValue }
        guard present else { return }
        var kept: [UInt8] = []
        kept.reserveCapacity(fields.count)
        forEachField { t, v in
            guard t != tag.rawValue else { return }
            kept.append(t)
            kept.append(UInt8(truncatingIfNeeded: v.count))
            kept.append(UInt8(truncatingIfNeeded: v.count >> 8))
            kept.append(contentsOf: v)
        }
        fields = kept
    }

    /// Appends a field: its bytes cut at 65,535.
    private mutating func append(_ tag: Field, _ value: UnsafeRawBufferPointer) {
        let n = min(value.count, Int(UInt16.max))
        fields.append(tag.rawValue)
        fields.append(UInt8(truncatingIfNeeded: n))
        fields.append(UInt8(truncatingIfNeeded: n >> 8))
        fields.append(contentsOf: UnsafeRawBufferPointer(rebasing: value[0..<n]))
    }

    /// A string field, cut at 65,535 bytes where a character starts (the bytes stay valid UTF-8).
    private mutating func append(_ tag: Field, _ s: String) {
        withUTF8(s) { append(tag, UnsafeRawBufferPointer(rebasing: $0[0..<utf8Cut($0, Int(UInt16.max))])) }
    }

    private mutating func append<T: FixedWidthInteger>(_ tag: Field, integer v: T) {
        withUnsafeBytes(of: v.littleEndian) { append(tag, $0) }
    }

    /// A response header: u8 name length | name (cut at 255) | value (cut to fit the field).
    private mutating func appendHeader(_ name: UnsafeRawBufferPointer, _ value: String) {
        withUTF8(value) { vb in
            let nl = min(name.count, 255)
            let vl = utf8Cut(vb, Int(UInt16.max) - 1 - nl)
            let n = 1 + nl + vl
            fields.append(Field.header.rawValue)
            fields.append(UInt8(truncatingIfNeeded: n))
            fields.append(UInt8(truncatingIfNeeded: n >> 8))
            fields.append(UInt8(nl))
            fields.append(contentsOf: UnsafeRawBufferPointer(rebasing: name[0..<nl]))
            fields.append(contentsOf: UnsafeRawBufferPointer(rebasing: vb[0..<vl]))
        }
    }

    private mutating func set(_ tag: Field, _ s: String?) {
        remove(tag)
        if let s { append(tag, s) }
    }

    private func string(_ tag: Field) -> String? {
        withField(tag) { String(decoding: $0, as: UTF8.self) }
    }

    private func strings(_ tag: Field) -> [String] {
        var out: [String] = []
        forEachField { t, v in if t == tag.rawValue { out.append(String(decoding: v, as: UTF8.self)) } }
        return out
    }

    // MARK: - The typed view

    /// "tls" or "quic" (server_name); "" when not set.
    public var transport: String {
        get { string(.transport) ?? "" }
        set { set(.transport, newValue) }
    }

    public var serverName: String? {
        get { string(.serverName) }
        set { set(.serverName, newValue) }
    }

    public var alpn: [String] {
        get { strings(.alpn) }
        set {
            remove(.alpn)
            for a in newValue { append(.alpn, a) }
        }
    }

    public var tlsVersions: [UInt16] {
        get {
            var out: [UInt16] = []
            forEachField { t, v in
                if t == Field.tlsVersion.rawValue && v.count == 2 { out.append(UInt16(v[0]) | UInt16(v[1]) << 8) }
            }
            return out
        }
        set {
            remove(.tlsVersion)
            for v in newValue { append(.tlsVersion, integer: v) }
        }
    }

    public var quicVersion: UInt32? {
        get {
            withField(.quicVersion) { v in
                v.count == 4 ? UInt32(v[0]) | UInt32(v[1]) << 8 | UInt32(v[2]) << 16 | UInt32(v[3]) << 24 : nil
            } ?? nil
        }
        set {
            remove(.quicVersion)
            if let newValue { append(.quicVersion, integer: newValue) }
        }
    }

    /// The QUIC Destination Connection ID (at most 255 bytes: its length on the wire is one byte).
    public var dcid: [UInt8] {
        get { withField(.dcid) { Array($0) } ?? [] }
        set {
            remove(.dcid)
            if !newValue.isEmpty { newValue.prefix(255).withUnsafeBytes { append(.dcid, $0) } }
        }
    }

    public var encryptedClientHello: Bool {
        get { withField(.encryptedClientHello) { $0.first == 1 } ?? false }
        set {
            remove(.encryptedClientHello)
            if newValue { append(.encryptedClientHello, integer: UInt8(1)) }
        }
    }

    public var method: String? {
        get { string(.method) }
        set { set(.method, newValue) }
    }

    public var url: String? {
        get { string(.url) }
        set { set(.url, newValue) }
    }

    public var host: String? {
        get { string(.host) }
        set { set(.host, newValue) }
    }

    /// Where the URL's host came from when the request named none: "address" (the server's address and port).
    public var hostFrom: String? {
        get { string(.hostFrom) }
        set { set(.hostFrom, newValue) }
    }

    /// The request or response was cut by the capture's snap length: what is here was captured, the rest not.
    public var truncated: Bool {
        get { withField(.truncated) { $0.first == 1 } ?? false }
        set {
            remove(.truncated)
            if newValue { append(.truncated, integer: UInt8(1)) }
        }
    }

    public var httpVersion: String? {
        get { string(.httpVersion) }
        set { set(.httpVersion, newValue) }
    }

    /// The response's status code (three digits on the wire; kept as 16 bits).
    public var status: Int? {
        get { withField(.status) { v in v.count == 2 ? Int(v[0]) | Int(v[1]) << 8 : nil } ?? nil }
        set {
            remove(.status)
            if let newValue { append(.status, integer: UInt16(truncatingIfNeeded: newValue)) }
        }
    }

    public var cacheable: Bool? {
        get { withField(.cacheable) { v in v.count == 1 ? v[0] != 0 : nil } ?? nil }
        set {
            remove(.cacheable)
            if let newValue { append(.cacheable, integer: UInt8(newValue ? 1 : 0)) }
        }
    }

    /// The edge proxy that served the response (Via / X-Cache / Server), an addition to EVENTS.md's fields.
    public var proxy: String? {
        get { string(.proxy) }
        set { set(.proxy, newValue) }
    }

    /// Lower-cased response header names of interest -> value. Written in `HeaderOrder` (other names after, in
    /// the dictionary's order): one order makes the journal's records compress better and faster.
    public var responseHeaders: [String: String] {
        get {
            var out: [String: String] = [:]
            forEachField { t, v in
                guard t == Field.header.rawValue, let (name, value) = Self.header(v) else { return }
                out[String(decoding: name, as: UTF8.self)] = String(decoding: value, as: UTF8.self)
            }
            return out
        }
        set {
            remove(.header)
            let n = newValue.count
            guard n > 1 && n <= 16 else {
                for (name, value) in newValue { withUTF8(name) { appendHeader($0, value) } }
                return
            }
            // Written as they come, then moved into order as bytes: no sort of the strings.
            let regionStart = fields.count
            withUnsafeTemporaryAllocation(of: Int.self, capacity: 64) { pieces in
                // Per slot: offset in the region and length of its field. Known names have a slot each (keys are
                // unique), others take the slots after them: at most 14 + 16 < 64.
                var present: UInt64 = 0
                var nextOther = HeaderOrder.names.count
                var lastSlot = -1
                var inOrder = true
                for (name, value) in newValue {
                    let start = fields.count
                    var slot = withUTF8(name) { nb in
                        appendHeader(nb, value)
                        return HeaderOrder.slot(of: nb) ?? -1
                    }
                    if slot < 0 { slot = nextOther; nextOther += 1 }
                    pieces[2 * slot] = start - regionStart
                    pieces[2 * slot + 1] = fields.count - start
                    present |= 1 << UInt64(slot)
                    inOrder = inOrder && slot > lastSlot
                    lastSlot = slot
                }
                guard !inOrder else { return }
                // Reordered in place from a copy in temporary storage (on the stack when small): no allocation.
                let length = fields.count - regionStart
                withUnsafeTemporaryAllocation(byteCount: length, alignment: 1) { copy in
                    fields.withUnsafeMutableBytes { all in
                        let region = all.baseAddress! + regionStart
                        copy.baseAddress!.copyMemory(from: region, byteCount: length)
                        var at = 0
                        var rest = present
                        while rest != 0 {
                            let slot = rest.trailingZeroBitCount
                            rest &= rest - 1
                            let (offset, size) = (pieces[2 * slot], pieces[2 * slot + 1])
                            (region + at).copyMemory(from: copy.baseAddress! + offset, byteCount: size)
                            at += size
                        }
                    }
                }
            }
        }
    }

    /// A header field's name and value; nil when the name length does not fit.
    @inline(__always)
    package static func header(_ v: UnsafeRawBufferPointer) -> (name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)? {
        guard v.count >= 1, Int(v[0]) < v.count else { return nil }
        let nl = Int(v[0])
        return (UnsafeRawBufferPointer(rebasing: v[1..<1 + nl]), UnsafeRawBufferPointer(rebasing: v[(1 + nl)...]))
    }
}

/// Where the last value of each field of an event lies, found in one pass: tags below 24 by tag, and response
/// headers that `HeaderOrder` places by their place (at 24 + it). Offsets on the stack: nothing is allocated.
package struct FieldIndex {
    package let raw: UnsafeRawBufferPointer
    private var start = InlineArray<38, Int32>(repeating: -1)
    private var length = InlineArray<38, Int32>(repeating: 0)

    init(_ raw: UnsafeRawBufferPointer) {
        self.raw = raw
        var at = 0
        while at + 3 <= raw.count {
            let tag = Int(raw[at]), n = Int(raw[at + 1]) | Int(raw[at + 2]) << 8
            guard at + 3 + n <= raw.count else { break }
            var i = tag < 24 ? tag : -1
            var valueAt = at + 3, valueLength = n
            if tag == Int(StateEvent.Field.header.rawValue), n >= 1, Int(raw[at + 3]) < n,
               let slot = HeaderOrder.slot(of: UnsafeRawBufferPointer(rebasing: raw[at + 4..<at + 4 + Int(raw[at + 3])]))
            {
                i = 24 + slot
                valueAt += 1 + Int(raw[at + 3])
                valueLength -= 1 + Int(raw[at + 3])
            }
            if i >= 0 {
                start[i] = Int32(valueAt)
                length[i] = Int32(valueLength)
            }
            at += 3 + n
        }
    }

    @inline(__always)
    private func value(at i: Int) -> UnsafeRawBufferPointer? {
        start[i] < 0 ? nil : UnsafeRawBufferPointer(rebasing: raw[Int(start[i])..<Int(start[i] + length[i])])
    }

    /// The bytes of the last `f` field.
    @inline(__always)
    package func value(_ f: StateEvent.Field) -> UnsafeRawBufferPointer? { value(at: Int(f.rawValue)) }

    /// The value of the last header at `HeaderOrder` place `slot`.
    @inline(__always)
    package func header(_ slot: Int) -> UnsafeRawBufferPointer? { value(at: 24 + slot) }

    package func string(_ f: StateEvent.Field) -> String? { value(f).map { String(decoding: $0, as: UTF8.self) } }

    package func headerString(_ slot: Int) -> String? {
        header(slot).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A 1-byte boolean field, a 2-byte number (little endian).
    package func bool(_ f: StateEvent.Field) -> Bool? {
        guard let v = value(f), v.count == 1 else { return nil }
        return v[0] != 0
    }

    package func u16(_ f: StateEvent.Field) -> UInt16? {
        guard let v = value(f), v.count == 2 else { return nil }
        return UInt16(v[0]) | UInt16(v[1]) << 8
    }
}

extension StateEvent: Equatable {
    /// Equal when the context and every field's value are: fields set in another order, or headers written in
    /// another order, still compare equal.
    public static func == (a: StateEvent, b: StateEvent) -> Bool {
        a.kind == b.kind && a.timestampNanoseconds == b.timestampNanoseconds && a.device == b.device
            && a.client == b.client && a.clientPort == b.clientPort && a.server == b.server
            && a.serverPort == b.serverPort && a.vlans == b.vlans && a.teid == b.teid
            && (a.fields == b.fields || a.sameFields(b))
    }

    private func sameFields(_ o: StateEvent) -> Bool {
        transport == o.transport && serverName == o.serverName && alpn == o.alpn && tlsVersions == o.tlsVersions
            && quicVersion == o.quicVersion && dcid == o.dcid && encryptedClientHello == o.encryptedClientHello
            && method == o.method && url == o.url && host == o.host && httpVersion == o.httpVersion
            && hostFrom == o.hostFrom && truncated == o.truncated
            && status == o.status && cacheable == o.cacheable && proxy == o.proxy
            && responseHeaders == o.responseHeaders && unknownFields == o.unknownFields
    }

    /// Fields of tags this version does not know (a newer journal's), in order.
    private var unknownFields: [[UInt8]] {
        var out: [[UInt8]] = []
        forEachField { t, v in if Field(rawValue: t) == nil { out.append([t] + Array(v)) } }
        return out
    }
}

/// How many of `b`'s first bytes to keep so that at most `limit` are kept and no character is cut.
@inline(__always)
func utf8Cut(_ b: UnsafeRawBufferPointer, _ limit: Int) -> Int {
    guard b.count > limit else { return b.count }
    var n = limit
    while n > 0 && b[n] & 0xC0 == 0x80 { n -= 1 }  // b[n] continues a character begun before the cut
    return n
}

/// Calls `body` with the UTF-8 of `s`, without a copy for native strings (a small string is copied to the stack).
/// `withContiguousStorageIfAvailable` is inlined from the standard library, where `utf8Span` was two calls into it
/// per string.
@inline(__always)
package func withUTF8<R>(_ s: String, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    if let r = s.utf8.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) { return r }
    var copy = s  // a bridged string (not on Linux): made native
    return copy.withUTF8 { body(UnsafeRawBufferPointer($0)) }
}

/// The order in which an event keeps its response headers. A `Dictionary` iterates in an order of its own per
/// instance, so the same headers came out in a different order from record to record and LZ4 found shorter
/// matches; in one order the journal's records compress better and faster. The names are `HTTPResponse.kept`,
/// found by (length, first byte), which tells all of them apart, then checked whole; other names follow in the
/// dictionary's order.
package enum HeaderOrder {
    package static let names: [StaticString] = [
        "cache-control", "expires", "etag", "last-modified", "vary", "content-type", "content-length", "age", "via",
        "x-cache", "x-cache-status", "server", "pragma", "date",
    ]

    /// Places of some names in `names` (the state store keeps these; the JSON writes these and `age`, `via`,
    /// `x-cache`, `server`).
    package static let cacheControl = 0, expires = 1, etag = 2, lastModified = 3, vary = 4, contentType = 5,
                       contentLength = 6

    /// The place of a header name in `names`, nil for another name.
    @inline(__always)
    package static func slot(of name: UnsafeRawBufferPointer) -> Int? {
        guard name.count >= 3 && name.count <= 14 else { return nil }
        let s: Int
        switch (name.count, name[0]) {
        case (13, UInt8(ascii: "c")): s = 0
        case (7, UInt8(ascii: "e")): s = 1
        case (4, UInt8(ascii: "e")): s = 2
        case (13, UInt8(ascii: "l")): s = 3
        case (4, UInt8(ascii: "v")): s = 4
        case (12, UInt8(ascii: "c")): s = 5
        case (14, UInt8(ascii: "c")): s = 6
        case (3, UInt8(ascii: "a")): s = 7
        case (3, UInt8(ascii: "v")): s = 8
        case (7, UInt8(ascii: "x")): s = 9
        case (14, UInt8(ascii: "x")): s = 10
        case (6, UInt8(ascii: "s")): s = 11
        case (6, UInt8(ascii: "p")): s = 12
        case (4, UInt8(ascii: "d")): s = 13
        default: return nil
        }
        let known = names[s]
        guard known.utf8CodeUnitCount == name.count,
              memcmp(known.utf8Start, name.baseAddress!, name.count) == 0 else { return nil }
        return s
    }
}
