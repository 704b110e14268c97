/// statetap's RFC 9111 storage decision for a shared cache (§3): the method and status allow it, the response does
/// not forbid it (`no-store`, `private`, `Vary: *`), and it is fresh-able: an explicit lifetime (`Expires`,
/// `max-age`, `s-maxage`), `public`, or a status that is heuristically cacheable (§4.2.2, RFC 9110 §15.1).
public enum Cacheability {
    static let heuristicStatuses: Set<Int> = [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501]

    public static func isCacheable(method: String, response r: HTTPResponse) -> Bool {
        guard method == "GET" || method == "HEAD", r.status >= 200 else { return false }
        let cc = (r.headers["cache-control"] ?? "").lowercased()
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
