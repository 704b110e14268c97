/// statetap's RFC 9111 storage decision for a shared cache (§3): the method and status allow it, the response does
/// not forbid it (`no-store`, `private`, `Vary: *`), and it is fresh-able: an explicit lifetime (`Expires`,
/// `max-age`, `s-maxage`), `public`, or a status that is heuristically cacheable (§4.2.2, RFC 9110 §15.1).
///
/// Header values that are plain ASCII (nearly all) are read as bytes, without making a String per directive; any
/// other value takes the Character-based reading (`lowercased`, `split`), whose Unicode rules the byte reading
/// would not match exactly.
public enum Cacheability {
    static let heuristicStatuses: Set<Int> = [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501]

    public static func isCacheable(method: String, response r: HTTPResponse) -> Bool {
        guard method == "GET" || method == "HEAD", r.status >= 200 else { return false }
        let cacheControl = r.headers["cache-control"]
        guard let flags = cacheControl.map(ASCIIValue.directives) ?? .some([]) else {
            return slowIsCacheable(r, cacheControl ?? "")
        }
        if flags.contains(.noStore) || flags.contains(.private) { return false }
        if let vary = r.headers["vary"] {
            guard let star = ASCIIValue.isStar(vary) else { return slowIsCacheable(r, cacheControl ?? "") }
            if star { return false }
        }
        if (cacheControl ?? "").isEmpty, r.headers["pragma"]?.lowercased().contains("no-cache") == true { return false }
        let explicit = r.headers["expires"] != nil || flags.contains(.maxAge) || flags.contains(.sMaxAge)
            || flags.contains(.public)
        return explicit || heuristicStatuses.contains(r.status)
    }

    /// The same decision read with Characters (values with non-ASCII bytes).
    static func slowIsCacheable(_ r: HTTPResponse, _ cacheControl: String) -> Bool {
        let cc = cacheControl.lowercased()
        let directives = cc.split(separator: ",").map { $0.split(separator: "=").first.map { String($0).trimmingSpaces() } ?? "" }
        if directives.contains("no-store") || directives.contains("private") { return false }
        if r.headers["vary"]?.trimmingSpaces() == "*" { return false }
        if r.headers["pragma"]?.lowercased().contains("no-cache") == true && cc.isEmpty { return false }
        let explicit = r.headers["expires"] != nil || directives.contains("max-age") || directives.contains("s-maxage")
            || directives.contains("public")
        return explicit || heuristicStatuses.contains(r.status)
    }
}

/// Names the edge proxy that served a response: the last `Via` entry's received-by (the hop nearest the client),
/// else the host after "from" in `X-Cache` (Squid style "HIT from edge-a"), else the `Server` product. nil when the
/// response names none (the server address then identifies the application).
public enum EdgeProxy {
    public static func identify(_ r: HTTPResponse) -> String? {
        let via = r.headers["via"], xCache = r.headers["x-cache"], server = r.headers["server"]
        if let via {
            guard let found = ASCIIValue.viaReceivedBy(via) else { return slowIdentify(r) }
            if let name = found { return name }
        }
        if let xCache {
            guard let found = ASCIIValue.wordAfterFrom(xCache) else { return slowIdentify(r) }
            if let name = found { return name }
        }
        if let server {
            guard let trimmed = ASCIIValue.trimmed(server) else { return slowIdentify(r) }
            if !trimmed.isEmpty { return trimmed }
        }
        return nil
    }

    /// The same reading with Characters (values with non-ASCII bytes).
    static func slowIdentify(_ r: HTTPResponse) -> String? {
        if let via = r.headers["via"], let last = via.split(separator: ",").last {
            // "1.1 edge-a (nginx)" -> "edge-a"
            let parts = last.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2 { return String(parts[1]) }
        }
        if let xc = r.headers["x-cache"] {
            let words = xc.split(separator: " ", omittingEmptySubsequences: true)
            if let i = words.firstIndex(where: { $0.lowercased() == "from" }), i + 1 < words.count {
                return String(words[i + 1])
            }
        }
        if let server = r.headers["server"]?.trimmingSpaces(), !server.isEmpty { return server }
        return nil
    }
}

/// Byte readings of ASCII header values, each equal to the Character-based reading it replaces (for ASCII text a
/// Character is a byte, except CR LF, which is no separator here). Each returns nil when the value has a non-ASCII
/// byte: the caller then takes the Character-based path.
enum ASCIIValue {
    struct Directives: OptionSet {
        let rawValue: UInt8
        static let noStore = Directives(rawValue: 1)
        static let `private` = Directives(rawValue: 2)
        static let maxAge = Directives(rawValue: 4)
        static let sMaxAge = Directives(rawValue: 8)
        static let `public` = Directives(rawValue: 16)
    }

    /// The Cache-Control directives statetap looks at: each comma-separated piece's name (before any `=`),
    /// trimmed of spaces and tabs, compared ignoring ASCII case.
    static func directives(_ value: String) -> Directives? {
        var value = value
        return value.withUTF8 { b -> Directives? in
            var out: Directives = []
            var i = 0
            let n = b.count
            while i < n {
                // One comma-separated piece [i, end).
                var end = i
                while end < n && b[end] != 0x2c {
                    if b[end] >= 0x80 { return nil }
                    end += 1
                }
                // Its name: up to the first `=` (leading `=`s are skipped, as split omits empty pieces).
                var lo = i
                while lo < end && b[lo] == 0x3d { lo += 1 }
                var hi = lo
                while hi < end && b[hi] != 0x3d { hi += 1 }
                while lo < hi && (b[lo] == 0x20 || b[lo] == 0x09) { lo += 1 }
                while hi > lo && (b[hi - 1] == 0x20 || b[hi - 1] == 0x09) { hi -= 1 }
                let name = UnsafeBufferPointer(rebasing: b[lo..<hi])
                if equalsIgnoringCase(name, "no-store") { out.insert(.noStore) }
                else if equalsIgnoringCase(name, "private") { out.insert(.private) }
                else if equalsIgnoringCase(name, "max-age") { out.insert(.maxAge) }
                else if equalsIgnoringCase(name, "s-maxage") { out.insert(.sMaxAge) }
                else if equalsIgnoringCase(name, "public") { out.insert(.public) }
                i = end + 1
            }
            return out
        }
    }

    /// Whether the value trimmed of spaces and tabs is `*`.
    static func isStar(_ value: String) -> Bool? {
        guard let t = trimmedRange(value) else { return nil }
        return t.count == 1 && t.first == 0x2a
    }

    /// The value trimmed of spaces and tabs.
    static func trimmed(_ value: String) -> String? {
        guard let t = trimmedRange(value) else { return nil }
        return String(Substring(t))
    }

    /// The second space-separated word of the last non-empty comma-separated piece of a Via value (`.some(nil)`:
    /// none).
    static func viaReceivedBy(_ value: String) -> String?? {
        let u = value.utf8
        guard u.allSatisfy({ $0 < 0x80 }) else { return nil }
        // The last piece between commas that is not empty.
        var end = u.endIndex
        while end > u.startIndex, u[u.index(before: end)] == 0x2c { end = u.index(before: end) }
        guard end > u.startIndex else { return .some(nil) }
        var start = end
        while start > u.startIndex, u[u.index(before: start)] != 0x2c { start = u.index(before: start) }
        let words = u[start..<end].split(separator: 0x20, omittingEmptySubsequences: true)
        guard words.count >= 2 else { return .some(nil) }
        return .some(String(Substring(words[1])))
    }

    /// The word after the first word that is "from" (any ASCII case) in a space-separated X-Cache value.
    static func wordAfterFrom(_ value: String) -> String?? {
        let u = value.utf8
        guard u.allSatisfy({ $0 < 0x80 }) else { return nil }
        let words = u.split(separator: 0x20, omittingEmptySubsequences: true)
        guard let i = words.firstIndex(where: { w in
            w.count == 4 && w.elementsEqual("from".utf8, by: { ($0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0) == $1 })
        }), i + 1 < words.count else { return .some(nil) }
        return .some(String(Substring(words[i + 1])))
    }

    private static func trimmedRange(_ value: String) -> Substring.UTF8View? {
        let u = value.utf8
        guard u.allSatisfy({ $0 < 0x80 }) else { return nil }
        var s = u[...]
        while let f = s.first, f == 0x20 || f == 0x09 { s = s.dropFirst() }
        while let l = s.last, l == 0x20 || l == 0x09 { s = s.dropLast() }
        return s
    }

    private static func equalsIgnoringCase(_ b: UnsafeBufferPointer<UInt8>, _ lower: StaticString) -> Bool {
        guard b.count == lower.utf8CodeUnitCount else { return false }
        let p = lower.utf8Start
        for k in 0..<b.count {
            var c = b[k]
            if c >= 65 && c <= 90 { c |= 0x20 }
            if c != p[k] { return false }
        }
        return true
    }
}
