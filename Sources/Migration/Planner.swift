import Journal
import MigrationAPI

/// Bounds of one plan.
public struct PlanLimits: Sendable, Equatable {
    /// Links per migration, across applications (most valuable first).
    public var maxLinks = 1000
    /// Bytes per migration, counted from the links' Content-Length (links of unknown size count 0).
    public var maxBytes = 1 << 30

    public init(maxLinks: Int = 1000, maxBytes: Int = 1 << 30) {
        self.maxLinks = maxLinks
        self.maxBytes = maxBytes
    }
}

/// Picks, for each application of a device, how its state is rebuilt at the destination, and which links go.
///
/// The policy table's first matching rule decides; without one: `prefetch-links` when the application has
/// cacheable links (those with validators are fetched conditionally), `revalidate` when every cacheable link has
/// validators, `hosts-only` when only server names are known (TLS, QUIC), else nothing. Links are taken in the
/// store's ranking (cacheable first, then recency × frequency) up to the limits. A link is prefetched only when
/// the response seen was cacheable and the request a GET: uncacheable objects, and objects whose cacheability
/// was never seen, are never fetched (counted).
public struct Planner: Sendable {
    public var rules: [PolicyRule]
    public var limits: PlanLimits

    public init(rules: [PolicyRule] = [], limits: PlanLimits = PlanLimits()) {
        self.rules = rules
        self.limits = limits
    }

    /// The method for one application.
    public func method(for app: AppState) -> ReconstructionMethod {
        if let rule = rules.first(where: { matches($0, app) }) { return rule.method }
        let cacheable = app.links.values.filter { $0.cacheable == true && $0.method == "GET" }
        if !cacheable.isEmpty {
            return cacheable.allSatisfy(\.hasValidators) ? .revalidate : .prefetchLinks
        }
        if !app.serverNames.isEmpty { return .hostsOnly }
        return .skip
    }

    private func matches(_ rule: PolicyRule, _ app: AppState) -> Bool {
        if let h = rule.host, !glob(h, app.key.host) { return false }
        if let e = rule.endpoint, !glob(e, app.key.endpoint) { return false }
        return rule.host != nil || rule.endpoint != nil
    }

    public func plan(migrationID: String, device: String, apps stateApps: [AppState], ranked: [RankedLink], from: String, to: String,
                     deadlineUnixMs: Int64, callback: String?) -> MigrationPlan
    {
        var summary = PlanSummary()
        var apps: [PlannedApp] = []
        var index: [AppKey: Int] = [:]
        for app in stateApps {
            let m = method(for: app)
            summary.methods[m.rawValue, default: 0] += 1
            guard m != .skip else { continue }
            index[app.key] = apps.count
            var planned = PlannedApp(endpoint: app.key.endpoint, host: app.key.host, proxy: app.proxy, method: m,
                                     links: [], hosts: [], state: nil)
            switch m {
            case .hostsOnly:
                planned.hosts = app.serverNames.isEmpty ? [app.key.host] : app.serverNames
                summary.hosts += planned.hosts.count
            case .stateTransfer:
                planned.state = app
            default:
                break
            }
            apps.append(planned)
        }
        summary.apps = apps.count
        var linkCount = 0
        var bytes = 0
        for r in ranked {
            guard let i = index[r.app], apps[i].method == .prefetchLinks || apps[i].method == .revalidate else { continue }
            let link = r.link
            guard link.method == "GET" else { summary.skippedNotGet += 1; continue }
            switch link.cacheable {
            case false?: summary.skippedUncacheable += 1; continue
            case nil: summary.skippedUnknownCacheability += 1; continue
            case true?: break
            }
            let size = link.contentLength ?? 0
            guard linkCount < limits.maxLinks, bytes + size <= limits.maxBytes else {
                summary.skippedOverLimit += 1
                continue
            }
            let parts = URLParts(link.url)
            guard parts.problem == nil else { summary.skippedNotGet += 1; continue }
            let conditional = link.hasValidators
            apps[i].links.append(PlannedLink(url: link.url, host: parts.authority, path: parts.path,
                                             fetch: conditional ? "conditional" : "get", etag: link.etag,
                                             lastModified: link.lastModified, contentLength: link.contentLength))
            linkCount += 1
            bytes += size
            if conditional { summary.conditionalLinks += 1 }
        }
        summary.links = linkCount
        summary.knownBytes = bytes
        return MigrationPlan(migrationId: migrationID, device: device, from: from, to: to,
                             deadlineUnixMs: deadlineUnixMs, callback: callback, apps: apps, summary: summary)
    }
}

/// `*` matches any run of characters; everything else literally, case-insensitive.
func glob(_ pattern: String, _ text: String) -> Bool {
    let p = Array(pattern.lowercased().utf8), t = Array(text.lowercased().utf8)
    var pi = 0, ti = 0, star = -1, mark = 0
    while ti < t.count {
        if pi < p.count && p[pi] != UInt8(ascii: "*") && p[pi] == t[ti] {
            pi += 1; ti += 1
        } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
            star = pi; mark = ti; pi += 1
        } else if star >= 0 {
            pi = star + 1; mark += 1; ti = mark
        } else {
            return false
        }
    }
    while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
    return pi == p.count
}
