import Decode
import Extract
import Testing
@testable import Journal
@testable import Migration

/// A link as the store keeps it.
private func link(_ url: String, cacheable: Bool?, etag: String? = nil, lastModified: String? = nil,
                  method: String = "GET", size: Int? = nil) -> LinkState
{
    LinkState(url: url, method: method, status: cacheable == nil ? nil : 200, hits: 1, firstSeen: 1, lastSeen: 1,
              cacheable: cacheable, etag: etag, lastModified: lastModified, contentLength: size)
}

private func app(_ host: String, endpoint: String = "edge-a", links: [LinkState] = [], serverNames: [String] = []) -> AppState {
    var a = AppState(key: AppKey(endpoint: endpoint, host: host), proxy: endpoint, server: "203.0.113.80:80",
                     serverNames: serverNames, firstSeen: 1, lastSeen: 1)
    for l in links { a.links[l.url] = l }
    return a
}

/// The ranking as given: every link of `order`, in that order (the store's own order is tested separately).
private func ranking(_ order: [(AppState, LinkState)]) -> [RankedLink] {
    order.enumerated().map { i, p in RankedLink(app: p.0.key, link: p.1, score: Double(order.count - i)) }
}

/// Every link of `apps` in the order the apps list them.
private func ranking(_ apps: [AppState], _ lists: [[LinkState]]) -> [RankedLink] {
    ranking(zip(apps, lists).flatMap { a, ls in ls.map { (a, $0) } })
}

private func plan(_ apps: [AppState], _ ranked: [RankedLink], planner: Planner = Planner()) -> MigrationPlan {
    planner.plan(migrationID: "m1", device: "10.45.0.9", apps: apps, ranked: ranked, from: "edge-a", to: "edge-b",
                 deadlineUnixMs: 0, callback: nil)
}

@Suite("Planner")
struct PlannerTests {
    struct MethodCase: CustomTestStringConvertible, Sendable {
        var name: String
        var links: [LinkState]
        var serverNames: [String]
        var expected: ReconstructionMethod
        var testDescription: String { name }
    }

    static let methodCases: [MethodCase] = [
        MethodCase(name: "cacheable links, one without validators: prefetch-links",
                   links: [link("http://a.example/1", cacheable: true), link("http://a.example/2", cacheable: true, etag: "\"x\"")],
                   serverNames: [], expected: .prefetchLinks),
        MethodCase(name: "every cacheable link has a validator (ETag or Last-Modified): revalidate",
                   links: [link("http://a.example/1", cacheable: true, etag: "\"x\""),
                           link("http://a.example/2", cacheable: true, lastModified: "Tue, 25 Nov 2025 10:00:00 GMT"),
                           link("http://a.example/3", cacheable: false)],
                   serverNames: [], expected: .revalidate),
        MethodCase(name: "server names only (TLS, QUIC): hosts-only",
                   links: [], serverNames: ["video.example"], expected: .hostsOnly),
        MethodCase(name: "uncacheable links and a server name: hosts-only",
                   links: [link("http://a.example/1", cacheable: false), link("http://a.example/2", cacheable: nil)],
                   serverNames: ["a.example"], expected: .hostsOnly),
        MethodCase(name: "a cacheable POST does not count: skip",
                   links: [link("http://a.example/1", cacheable: true, method: "POST")], serverNames: [], expected: .skip),
        MethodCase(name: "nothing cacheable, no server name: skip",
                   links: [link("http://a.example/1", cacheable: false), link("http://a.example/2", cacheable: nil)],
                   serverNames: [], expected: .skip),
    ]

    @Test("the default method of an application", arguments: methodCases)
    func defaultMethod(_ c: MethodCase) {
        #expect(Planner().method(for: app("a.example", links: c.links, serverNames: c.serverNames)) == c.expected)
    }

    @Test("the first matching policy rule decides (host and endpoint globs, state-transfer keeps the record)")
    func policyRules() throws {
        let rules = [
            PolicyRule(host: "*.video.example", method: .stateTransfer),
            PolicyRule(host: "ads.*", endpoint: "edge-a", method: .skip),
            PolicyRule(endpoint: "edge-c", method: .hostsOnly),
            PolicyRule(host: "*.video.example", method: .prefetchLinks),  // shadowed by the first rule
        ]
        let planner = Planner(rules: rules)
        let cacheable = [link("http://x/1", cacheable: true)]
        let video = app("Live.Video.Example", links: cacheable)
        let ads = app("ads.example", links: cacheable)
        let adsElsewhere = app("ads.example", endpoint: "edge-z", links: cacheable)
        let viaC = app("shop.example", endpoint: "edge-c", links: cacheable)
        let plain = app("shop.example", links: cacheable)
        #expect(planner.method(for: video) == .stateTransfer)
        #expect(planner.method(for: ads) == .skip)
        #expect(planner.method(for: adsElsewhere) == .prefetchLinks, "host and endpoint must both match")
        #expect(planner.method(for: viaC) == .hostsOnly)
        #expect(planner.method(for: plain) == .prefetchLinks, "no rule matches: the default")

        let p = plan([video, ads, viaC, plain], ranking([video, ads, viaC, plain], [cacheable, cacheable, cacheable, cacheable]),
                     planner: planner)
        #expect(p.summary.apps == 3)
        #expect(p.summary.methods == ["state-transfer": 1, "skip": 1, "hosts-only": 1, "prefetch-links": 1])
        let transferred = try #require(p.apps.first { $0.method == .stateTransfer })
        #expect(transferred.state == video)
        #expect(transferred.links.isEmpty, "a state-transfer application sends its record, not links")
        let hosts = try #require(p.apps.first { $0.method == .hostsOnly })
        #expect(hosts.hosts == ["shop.example"], "no server name seen: the application's host")
        #expect(hosts.links.isEmpty)
        #expect(p.apps.first { $0.method == .prefetchLinks }?.links.map(\.url) == ["http://x/1"])
    }

    @Test("glob: * matches any run, everything else literally and case-insensitively", arguments: [
        ("*.example", "cdn.example", true), ("*.example", "example", false), ("cdn.*", "CDN.Example", true),
        ("a*b*c", "aXXbYYc", true), ("a*b*c", "aXXbYY", false), ("a*b*c", "abcbc", true), ("*", "", true),
        ("", "", true), ("", "x", false), ("abc", "abd", false), ("*.example.com", "a.b.example.com", true),
        ("**x", "yyx", true), ("a?c", "abc", false),
    ])
    func globMatching(_ pattern: String, _ text: String, _ expected: Bool) {
        #expect(glob(pattern, text) == expected)
    }

    @Test("uncacheable, unknown-cacheability and non-GET links are never planned, and are counted")
    func skippedLinks() {
        let links = [
            link("http://a.example/ok", cacheable: true),
            link("http://a.example/private", cacheable: false),
            link("http://a.example/never-answered", cacheable: nil),
            link("http://a.example/form", cacheable: true, method: "POST"),
            link("http://a.example/no-store", cacheable: false),
            link("http://a.example/ok2?q=1#frag", cacheable: true),
        ]
        let a = app("a.example", links: links)
        let p = plan([a], ranking([a], [links]))
        #expect(p.apps.count == 1)
        #expect(p.apps[0].links.map(\.url) == ["http://a.example/ok", "http://a.example/ok2?q=1#frag"])
        #expect(p.apps[0].links.map(\.path) == ["/ok", "/ok2?q=1"], "the fragment never goes to the cache")
        #expect(p.summary.links == 2)
        #expect(p.summary.skippedUncacheable == 2)
        #expect(p.summary.skippedUnknownCacheability == 1)
        #expect(p.summary.skippedNotGet == 1)
        #expect(p.summary.skippedOverLimit == 0)
    }

    @Test("links with validators are fetched conditionally, with their Host (port kept) and validators")
    func conditionalLinks() throws {
        let links = [
            link("http://a.example:8080/v?x=1", cacheable: true, etag: "\"e1\"", size: 10),
            link("https://a.example/plain", cacheable: true, size: 20),
            link("http://[2001:db8::1]:81/lm", cacheable: true, lastModified: "Tue, 25 Nov 2025 10:00:00 GMT"),
        ]
        let a = app("a.example", links: links)
        let p = plan([a], ranking([a], [links]))
        let planned = try #require(p.apps.first).links
        #expect(planned.map(\.fetch) == ["conditional", "get", "conditional"])
        #expect(planned.map(\.host) == ["a.example:8080", "a.example", "[2001:db8::1]:81"])
        #expect(planned.map(\.path) == ["/v?x=1", "/plain", "/lm"])
        #expect(planned[0].etag == "\"e1\"" && planned[0].lastModified == nil)
        #expect(planned[2].lastModified == "Tue, 25 Nov 2025 10:00:00 GMT")
        #expect(p.summary.conditionalLinks == 2)
        #expect(p.summary.knownBytes == 30, "links of unknown size count 0")
        #expect(p.apps[0].method == .prefetchLinks)
    }

    @Test("--prefetch-max-links keeps the first links of the ranking, across applications")
    func maxLinks() {
        let a = app("a.example", links: (0..<3).map { link("http://a.example/\($0)", cacheable: true) })
        let b = app("b.example", links: (0..<3).map { link("http://b.example/\($0)", cacheable: true) })
        // Interleaved ranking: b0 a0 b1 a1 b2 a2.
        let order = (0..<3).flatMap { i in [(b, b.links["http://b.example/\(i)"]!), (a, a.links["http://a.example/\(i)"]!)] }
        let p = plan([a, b], ranking(order), planner: Planner(limits: PlanLimits(maxLinks: 3)))
        #expect(p.summary.links == 3)
        #expect(p.summary.skippedOverLimit == 3)
        #expect(p.apps.first { $0.host == "b.example" }?.links.map(\.url) == ["http://b.example/0", "http://b.example/1"])
        #expect(p.apps.first { $0.host == "a.example" }?.links.map(\.url) == ["http://a.example/0"])
    }

    @Test("--prefetch-max-bytes: a link that would pass the limit stays out, smaller ones after it still fit")
    func maxBytes() {
        let links = [
            link("http://a.example/400a", cacheable: true, size: 400),
            link("http://a.example/400b", cacheable: true, size: 400),
            link("http://a.example/400c", cacheable: true, size: 400),
            link("http://a.example/unknown", cacheable: true),
            link("http://a.example/200", cacheable: true, size: 200),
            link("http://a.example/1", cacheable: true, size: 1),
        ]
        let a = app("a.example", links: links)
        let p = plan([a], ranking([a], [links]), planner: Planner(limits: PlanLimits(maxBytes: 1000)))
        #expect(p.apps[0].links.map(\.url) == ["http://a.example/400a", "http://a.example/400b", "http://a.example/unknown",
                                               "http://a.example/200"])
        #expect(p.summary.knownBytes == 1000)
        #expect(p.summary.skippedOverLimit == 2)
    }

    @Test("links of the store's ranking keep its order (cacheable first, then recency x frequency)")
    func storeRankingKept() throws {
        // `hot` is used five times, `warm` twice, the others once; `old` long before the device's last activity.
        var events: [StateEvent] = []
        var t = 0
        func add(_ e: StateEvent) { events.append(e); t += 1 }
        add(webLinkEvent("http://cdn.example/old.js", at: 0, cacheable: true))
        for _ in 0..<5 { add(webLinkEvent("http://cdn.example/hot.js", at: 3_600_000 + t, cacheable: true)) }
        for _ in 0..<2 { add(webLinkEvent("http://cdn.example/warm.css", at: 3_600_000 + t, cacheable: true)) }
        add(webLinkEvent("http://cdn.example/private", at: 3_600_000 + t, cacheable: false))
        add(webLinkEvent("http://img.example/pic.png", host: "img.example", at: 3_600_000 + t, cacheable: true, etag: "\"p\""))
        add(webLinkEvent("http://cdn.example/new.js", at: 3_600_000 + t, cacheable: true))
        let s = store(events)
        let d = try #require(IPAddress(testDevice))
        let snapshot = try #require(s.snapshot(device: d))
        let ranked = s.rankedLinks(device: d)
        let p = Planner().plan(migrationID: "m", device: testDevice, apps: snapshot.apps, ranked: ranked, from: "", to: "edge-b",
                               deadlineUnixMs: 0, callback: nil)
        let planned = p.apps.flatMap(\.links).map(\.url)
        let expected = ranked.filter { $0.link.cacheable == true }.map(\.link.url)
        #expect(expected.first == "http://cdn.example/hot.js")
        #expect(expected.last == "http://cdn.example/old.js")
        let cdn = try #require(p.apps.first { $0.host == "cdn.example" })
        #expect(cdn.links.map(\.url) == expected.filter { $0.contains("cdn.example") })
        #expect(Set(planned) == Set(expected))
        #expect(p.apps.first { $0.host == "img.example" }?.method == .revalidate)
        #expect(p.summary.skippedUncacheable == 1)
    }
}
