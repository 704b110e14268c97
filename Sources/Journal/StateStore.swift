import Decode
import Extract
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Bounds of the state store: least recently used out first, every eviction counted.
public struct StoreLimits: Sendable, Equatable {
    public var maxDevices = 100_000
    public var maxAppsPerDevice = 256
    public var maxLinksPerApp = 1000
    public init() {}
}

/// One web link of an application, deduplicated by URL.
public struct LinkState: Sendable, Codable, Equatable {
    public var url: String
    public var method: String
    public var status: Int?
    public var hits: Int
    public var firstSeen: UInt64
    public var lastSeen: UInt64
    public var cacheable: Bool?
    public var cacheControl: String?
    public var expires: String?
    public var etag: String?
    public var lastModified: String?
    public var vary: String?
    public var contentType: String?
    public var contentLength: Int?

    /// Whether a conditional request can revalidate it.
    public var hasValidators: Bool { etag != nil || lastModified != nil }
}

/// An application of a device: the serving proxy (or server) and the host it served.
public struct AppKey: Hashable, Sendable, Codable, Comparable {
    /// The edge proxy's identity when one was seen (Via / X-Cache / Server), else the server's address and port.
    public var endpoint: String
    public var host: String

    public static func < (a: AppKey, b: AppKey) -> Bool { (a.endpoint, a.host) < (b.endpoint, b.host) }
}

/// What is known of one application of a device.
public struct AppState: Sendable, Codable, Equatable {
    public var key: AppKey
    public var proxy: String?
    /// The server's address and port as first seen.
    public var server: String
    public var links: [String: LinkState] = [:]
    public var serverNames: [String] = []
    public var alpn: [String] = []
    public var transports: [String] = []
    public var firstSeen: UInt64
    public var lastSeen: UInt64
    public var events = 0
    public var linksEvicted = 0
}

/// One device's state, as the control plane reads it.
public struct DeviceSnapshot: Sendable, Codable, Equatable {
    public var device: String
    public var firstSeen: UInt64
    public var lastSeen: UInt64
    public var events: Int
    public var apps: [AppState]
}

/// A link with its rank for pre-fetching.
public struct RankedLink: Sendable, Codable, Equatable {
    public var app: AppKey
    public var link: LinkState
    public var score: Double
}

/// Counters of the store.
public struct StoreStats: Sendable, Equatable {
    public var devices = 0
    public var apps = 0
    public var links = 0
    public var recordsApplied: UInt64 = 0
    public var devicesEvicted: UInt64 = 0
    public var appsEvicted: UInt64 = 0
    public var linksEvicted: UInt64 = 0
}

/// Per-device application state materialized from journal records, bounded, safe to query from any thread while
/// the journal thread applies records.
public final class StateStore: Sendable {
    /// An application's identity as looked up per record: no string is built for it (`AppKey`, the printable
    /// form, is made once when the application is first seen).
    struct AppID: Hashable {
        var proxy: String?
        var server: IPAddress
        var port: UInt16
        var host: String?
    }

    struct Device {
        var address: IPAddress
        var apps: [AppID: AppState] = [:]
        var firstSeen: UInt64
        var lastSeen: UInt64
        var events = 0
        var touched: UInt64
    }

    struct State {
        var devices: [IPAddress: Device] = [:]
        var clock: UInt64 = 0
        /// The oldest journal segment whose records the store holds (its checkpoint is not used once retention
        /// has removed that segment: the store would keep what the journal no longer does).
        var sinceSegment: UInt64 = 0
        var stats = StoreStats()
    }

    public let limits: StoreLimits
    let state = Mutex(State())

    public init(limits: StoreLimits = StoreLimits()) { self.limits = limits }

    /// Applies one record (events add state; markers do not change it). On the journal thread this runs for every
    /// record the journal takes, so each level (device, application, link) is found with one hash and changed where
    /// it lies through its index: a `dict[key] == nil` test, an insert and a `dict[key]!` change hashed the key
    /// three times (the URL's SipHash at every level of a web link).
    public func apply(_ record: JournalRecord) {
        guard case .event(let e) = record else {
            state.withLock { $0.stats.recordsApplied &+= 1 }
            return
        }
        // The event's fields are found in one pass, before the lock.
        e.withFieldIndex { f in state.withLock { s in
            s.stats.recordsApplied &+= 1
            s.clock &+= 1
            let ts = e.timestampNanoseconds
            let i: Dictionary<IPAddress, Device>.Index
            if let found = s.devices.index(forKey: e.device) {
                i = found
            } else {
                s.stats.devices += 1
                s.devices[e.device] = Device(address: e.device, firstSeen: ts, lastSeen: ts, touched: 0)
                i = s.devices.index(forKey: e.device)!
            }
            Self.update(&s.devices.values[i], with: e, f, clock: s.clock, stats: &s.stats, limits: limits)
            if s.devices.count > limits.maxDevices {
                // Least recently touched out, a tenth of the limit at a time (the device just seen is the most
                // recent, so it stays).
                for address in Self.leastRecent(s.devices, keep: limits.maxDevices, age: { $0.touched }) {
                    guard let old = s.devices.removeValue(forKey: address) else { continue }
                    s.stats.devices -= 1
                    s.stats.apps -= old.apps.count
                    s.stats.links -= old.apps.values.reduce(0) { $0 + $1.links.count }
                    s.stats.devicesEvicted &+= 1
                }
            }
        } }
    }

    private static func update(_ d: inout Device, with e: StateEvent, _ f: FieldIndex, clock: UInt64,
                               stats: inout StoreStats, limits: StoreLimits)
    {
        let ts = e.timestampNanoseconds
        d.touched = clock
        d.firstSeen = min(d.firstSeen, ts)
        d.lastSeen = max(d.lastSeen, ts)
        d.events += 1
        let host = f.string(e.kind == .webLink ? .host : .serverName)
        let proxy = e.kind == .webLink ? f.string(.proxy) : nil
        let id = proxy != nil ? AppID(proxy: proxy, server: .none, port: 0, host: host)
            : AppID(proxy: nil, server: e.server, port: e.serverPort, host: host)
        let i: Dictionary<AppID, AppState>.Index
        if let found = d.apps.index(forKey: id) {
            i = found
        } else {
            stats.apps += 1
            let server = endpointText(e.server, e.serverPort)
            let key = AppKey(endpoint: proxy ?? server, host: host ?? e.server.description)
            d.apps[id] = AppState(key: key, server: server, firstSeen: ts, lastSeen: ts)
            i = d.apps.index(forKey: id)!
        }
        update(&d.apps.values[i], with: e, f, proxy: proxy, stats: &stats, limits: limits)
        if d.apps.count > limits.maxAppsPerDevice {
            for oldID in leastRecent(d.apps, keep: limits.maxAppsPerDevice, age: { $0.lastSeen }) {
                guard let old = d.apps.removeValue(forKey: oldID) else { continue }
                stats.links -= old.links.count
                stats.apps -= 1
                stats.appsEvicted &+= 1
            }
        }
    }

    private static func update(_ app: inout AppState, with e: StateEvent, _ f: FieldIndex, proxy: String?,
                               stats: inout StoreStats, limits: StoreLimits)
    {
        let ts = e.timestampNanoseconds
        app.firstSeen = min(app.firstSeen, ts)
        app.lastSeen = max(app.lastSeen, ts)
        app.events += 1
        guard e.kind == .webLink else {
            if let name = f.string(.serverName), !app.serverNames.contains(name) { app.serverNames.append(name) }
            for a in e.alpn where !app.alpn.contains(a) { app.alpn.append(a) }
            if let t = f.string(.transport), !t.isEmpty, !app.transports.contains(t) { app.transports.append(t) }
            return
        }
        if let proxy { app.proxy = proxy }
        guard let url = f.string(.url) else { return }
        let i: Dictionary<String, LinkState>.Index
        if let found = app.links.index(forKey: url) {
            i = found
        } else {
            stats.links += 1
            app.links[url] = LinkState(url: url, method: f.string(.method) ?? "GET", hits: 0, firstSeen: ts,
                                       lastSeen: ts)
            i = app.links.index(forKey: url)!
        }
        update(&app.links.values[i], with: e, f)
        if app.links.count > limits.maxLinksPerApp {
            let old = leastRecent(app.links, keep: limits.maxLinksPerApp, age: { $0.lastSeen })
            for k in old { app.links[k] = nil }
            app.linksEvicted += old.count
            stats.linksEvicted &+= UInt64(old.count)
            stats.links -= old.count
        }
    }

    private static func update(_ link: inout LinkState, with e: StateEvent, _ f: FieldIndex) {
        let ts = e.timestampNanoseconds
        link.hits += 1
        link.firstSeen = min(link.firstSeen, ts)
        guard ts >= link.lastSeen || link.status == nil else { return }
        link.lastSeen = max(link.lastSeen, ts)
        link.method = f.string(.method) ?? link.method
        guard let status = f.u16(.status) else { return }
        // The newest response describes the object; a request without one keeps the last, with its headers (the
        // field index placed them by `HeaderOrder` in its one pass).
        link.status = Int(status)
        link.cacheable = f.bool(.cacheable)
        link.cacheControl = f.headerString(HeaderOrder.cacheControl)
        link.expires = f.headerString(HeaderOrder.expires)
        link.etag = f.headerString(HeaderOrder.etag)
        link.lastModified = f.headerString(HeaderOrder.lastModified)
        link.vary = f.headerString(HeaderOrder.vary)
        link.contentType = f.headerString(HeaderOrder.contentType)
        link.contentLength = f.headerString(HeaderOrder.contentLength).flatMap { Int($0) }
    }

    /// The keys of the least recent entries (smallest `age`) to remove from `d`, which has grown past `keep`:
    /// enough to go a tenth below `keep`, so the sort this takes is paid once per `keep / 10` insertions, not
    /// at every one (with 1% slack, rebuilding a store of 1,000-link applications spent most of its time here).
    private static func leastRecent<K: Hashable, V>(_ d: [K: V], keep: Int, age: (V) -> UInt64) -> [K] {
        let excess = min(d.count - keep + keep / 10, d.count - 1)
        guard excess > 0 else { return [] }
        var order = d.map { (age: age($0.value), key: $0.key) }
        order.sort { $0.age < $1.age }
        return order.prefix(excess).map(\.key)
    }

    public var stats: StoreStats { state.withLock { $0.stats } }

    /// Devices known, most recently seen first.
    public func devices(limit: Int = .max) -> [(IPAddress, UInt64)] {
        state.withLock { s in
            s.devices.values.sorted { $0.lastSeen > $1.lastSeen }.prefix(limit).map { ($0.address, $0.lastSeen) }
        }
    }

    /// One device's state: every application, links by URL.
    public func snapshot(device: IPAddress) -> DeviceSnapshot? {
        state.withLock { s in
            guard let d = s.devices[device] else { return nil }
            return DeviceSnapshot(device: device.description, firstSeen: d.firstSeen, lastSeen: d.lastSeen,
                                  events: d.events, apps: d.apps.values.sorted { $0.key < $1.key })
        }
    }

    /// The device's links ranked for pre-fetching: cacheable first, then by recency × frequency (hits, halved for
    /// every `halfLifeSeconds` between the link's last use and the device's last activity).
    public func rankedLinks(device: IPAddress, halfLifeSeconds: Double = 3600, limit: Int = .max) -> [RankedLink] {
        guard let snap = snapshot(device: device) else { return [] }
        var out: [RankedLink] = []
        for app in snap.apps {
            for link in app.links.values {
                let age = Double(snap.lastSeen &- min(link.lastSeen, snap.lastSeen)) / 1e9
                let score = Double(link.hits) * exp2(-age / halfLifeSeconds)
                out.append(RankedLink(app: app.key, link: link, score: score))
            }
        }
        out.sort {
            let a = $0.link.cacheable == true, b = $1.link.cacheable == true
            if a != b { return a }
            if $0.score != $1.score { return $0.score > $1.score }
            return $0.link.url < $1.link.url
        }
        return Array(out.prefix(limit))
    }
}

private func endpointText(_ a: IPAddress, _ port: UInt16) -> String {
    a.isIPv6 ? "[\(a)]:\(port)" : "\(a):\(port)"
}
