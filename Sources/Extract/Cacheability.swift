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
