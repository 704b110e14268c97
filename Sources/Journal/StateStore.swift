import Decode
import Pipeline
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Bounds of the state store: least recently used out first, every eviction counted.
public struct StoreLimits: Sendable {
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
    private struct AppID: Hashable {
        var proxy: String?
        var server: IPAddress
        var port: UInt16
        var host: String?
    }

    private struct Device {
        var address: IPAddress
        var apps: [AppID: AppState] = [:]
        var firstSeen: UInt64
        var lastSeen: UInt64
        var events = 0
        var touched: UInt64
    }

    private struct State {
        var devices: [IPAddress: Device] = [:]
        var clock: UInt64 = 0
        var stats = StoreStats()
    }

    public let limits: StoreLimits
    private let state = Mutex(State())

    public init(limits: StoreLimits = StoreLimits()) { self.limits = limits }

    /// Applies one record (events add state; markers do not change it).
    public func apply(_ record: JournalRecord) {
        guard case .event(let e) = record else {
            state.withLock { $0.stats.recordsApplied &+= 1 }
            return
        }
        state.withLock { s in
            s.stats.recordsApplied &+= 1
            s.clock &+= 1
            let ts = e.timestampNanoseconds
            // Taken out of the dictionaries and put back, so each is uniquely referenced while it is changed
            // (a copy read out of a dictionary that still holds it would copy its links on the first write).
            var d = s.devices.removeValue(forKey: e.device) ?? {
                s.stats.devices += 1
                return Device(address: e.device, firstSeen: ts, lastSeen: ts, touched: 0)
            }()
            d.touched = s.clock
            d.firstSeen = min(d.firstSeen, ts)
            d.lastSeen = max(d.lastSeen, ts)
            d.events += 1
            let host = e.kind == .webLink ? e.host : e.serverName
            let proxy = e.kind == .webLink ? e.proxy : nil
            let id = proxy != nil ? AppID(proxy: proxy, server: .none, port: 0, host: host)
                : AppID(proxy: nil, server: e.server, port: e.serverPort, host: host)
            var app = d.apps.removeValue(forKey: id) ?? {
                s.stats.apps += 1
                let server = endpointText(e.server, e.serverPort)
                let key = AppKey(endpoint: proxy ?? server, host: host ?? e.server.description)
                return AppState(key: key, server: server, firstSeen: ts, lastSeen: ts)
            }()
            app.firstSeen = min(app.firstSeen, ts)
            app.lastSeen = max(app.lastSeen, ts)
            app.events += 1
            if e.kind == .webLink {
                if let p = e.proxy { app.proxy = p }
                if let url = e.url {
                    if app.links[url] == nil { s.stats.links += 1 }
                    var link = app.links.removeValue(forKey: url) ?? LinkState(url: url, method: e.method ?? "GET", hits: 0, firstSeen: ts,
                                                           lastSeen: ts)
                    link.hits += 1
                    link.firstSeen = min(link.firstSeen, ts)
                    if ts >= link.lastSeen || link.status == nil {
                        link.lastSeen = max(link.lastSeen, ts)
                        link.method = e.method ?? link.method
                        if let status = e.status {
                            // The newest response describes the object; a request without one keeps the last.
                            let h = e.responseHeaders
                            link.status = status
                            link.cacheable = e.cacheable
                            link.cacheControl = h["cache-control"]
                            link.expires = h["expires"]
                            link.etag = h["etag"]
                            link.lastModified = h["last-modified"]
                            link.vary = h["vary"]
                            link.contentType = h["content-type"]
                            link.contentLength = h["content-length"].flatMap { Int($0) }
                        }
                    }
                    app.links[url] = link
                    if app.links.count > limits.maxLinksPerApp {
                        let n = evict(&app.links, keep: limits.maxLinksPerApp) { $0.lastSeen }
                        app.linksEvicted += n
                        s.stats.linksEvicted &+= UInt64(n)
                        s.stats.links -= n
                    }
                }
            } else {
                if let name = e.serverName, !app.serverNames.contains(name) { app.serverNames.append(name) }
                for a in e.alpn where !app.alpn.contains(a) { app.alpn.append(a) }
                if !e.transport.isEmpty, !app.transports.contains(e.transport) { app.transports.append(e.transport) }
            }
            d.apps[id] = app
            if d.apps.count > limits.maxAppsPerDevice {
                let oldest = d.apps.sorted { $0.value.lastSeen < $1.value.lastSeen }
                    .prefix(d.apps.count - limits.maxAppsPerDevice)
                for (oldID, old) in oldest {
                    d.apps[oldID] = nil
                    s.stats.links -= old.links.count
                    s.stats.apps -= 1
                    s.stats.appsEvicted &+= 1
                }
            }
            s.devices[e.device] = d
            if s.devices.count > limits.maxDevices {
                // Least recently touched out, a batch at a time (one sort per ~1% of the limit, not per device).
                let excess = min(s.devices.count - limits.maxDevices + max(1, limits.maxDevices / 100),
                                 s.devices.count - 1)  // never the device just seen
                for old in s.devices.values.sorted(by: { $0.touched < $1.touched }).prefix(excess) {
                    s.devices[old.address] = nil
                    s.stats.devices -= 1
                    s.stats.apps -= old.apps.count
                    s.stats.links -= old.apps.values.reduce(0) { $0 + $1.links.count }
                    s.stats.devicesEvicted &+= 1
                }
            }
        }
    }

    /// Removes the least recent entries (by `age`) until `keep` remain, plus ~1% slack; returns how many went.
    private func evict<V>(_ d: inout [String: V], keep: Int, age: (V) -> UInt64) -> Int {
        let excess = d.count - keep + max(0, keep / 100)
        guard excess > 0 else { return 0 }
        for (k, _) in d.sorted(by: { age($0.value) < age($1.value) }).prefix(excess) { d[k] = nil }
        return excess
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
