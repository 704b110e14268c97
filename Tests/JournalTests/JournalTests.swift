import Decode
import Extract
import Foundation
import Synchronization
import Testing
@testable import Journal

/// A fresh directory removed when the test is done.
final class TempDirectory {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "statetap-journal-\(UUID().uuidString)"
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
    var segments: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(".stj") }.sorted() }
}

let base: UInt64 = 1_700_000_000_000_000_000

func webLink(_ i: Int, device: String = "10.45.0.9", host: String = "cdn.example", status: Int? = 200,
             cacheable: Bool? = true, proxy: String? = "edge-a") -> StateEvent
{
    let d = IPAddress(device)!
    var e = StateEvent(kind: .webLink, timestampNanoseconds: base + UInt64(i) * 1_000_000, device: d, client: d,
                       clientPort: 40000, server: IPAddress("203.0.113.80")!, serverPort: 80, vlans: [100, 200],
                       teid: 0x1234)
    e.method = "GET"
    e.url = "http://\(host)/object/\(i % 50).png?v=\(i % 7)"
    e.host = host
    e.httpVersion = "HTTP/1.1"
    e.status = status
    if status != nil {
        e.responseHeaders = ["cache-control": "max-age=600", "etag": "\"e\(i)\"", "content-type": "image/png",
                             "content-length": "1234", "via": "1.1 edge-a", "x-cache": "HIT"]
    }
    e.cacheable = cacheable
    e.proxy = proxy
    return e
}

func serverName(_ i: Int, device: String = "10.45.0.9", quic: Bool) -> StateEvent {
    let d = IPAddress(device)!
    var e = StateEvent(kind: .serverName, timestampNanoseconds: base + UInt64(i) * 1_000_000, device: d, client: d,
                       clientPort: 50000, server: IPAddress("2001:db8::443")!, serverPort: 443, vlans: [], teid: nil)
    e.transport = quic ? "quic" : "tls"
    e.serverName = "video.example"
    e.alpn = quic ? ["h3"] : ["h2", "http/1.1"]
    e.tlsVersions = [0x0304, 0x0303]
    if quic { e.quicVersion = 0x6b33_43cf; e.dcid = [0x83, 0x94, 0xc8, 0xf0] }
    e.encryptedClientHello = !quic
    return e
}

/// Writes `records` through a writer and closes it.
func write(_ records: [JournalRecord], to dir: TempDirectory, configure: (inout JournalOptions) -> Void = { _ in })
    throws -> JournalWriter
{
    var o = JournalOptions()
    o.dropWhenFull = false
    configure(&o)
    let w = try JournalWriter(directory: dir.path, options: o)
    w.start()
    for r in records { w.append(r) }
    w.finish()
    return w
}

func readAll(_ dir: TempDirectory, device: IPAddress? = nil, useIndex: Bool = true) throws -> ([JournalRecord], JournalReadReport) {
    var out: [JournalRecord] = []
    let report = try JournalReader(directory: dir.path).read(device: device, useIndex: useIndex) { out.append($0) }
    return (out, report)
}

@Suite("State journal")
struct JournalTests {
    @Test("every record type round-trips, including a plan larger than one field")
    func roundTrip() throws {
        let dir = TempDirectory()
        let bigPlan = Array(String(repeating: "{\"url\":\"http://cdn.example/x\"},", count: 4000).utf8)
        var noResponse = webLink(3, status: nil, cacheable: nil, proxy: nil)
        noResponse.vlans = []
        noResponse.teid = nil
        let records: [JournalRecord] = [
            .event(webLink(1)), .event(noResponse), .event(serverName(2, quic: false)), .event(serverName(4, quic: true)),
            .migration(MigrationMark(id: "m-1", device: IPAddress("10.45.0.9")!, from: "edge-a", to: "edge-b",
                                     status: "planned", timestampNanoseconds: base + 5, detail: "3 apps")),
            .migration(MigrationMark(id: "m-2", device: IPAddress("2001:db8::9")!, from: "a", to: "b",
                                     status: "cancelled", timestampNanoseconds: base + 6)),
            .plan(PlanMark(migrationID: "m-1", device: IPAddress("10.45.0.9")!, timestampNanoseconds: base + 7, body: bigPlan)),
        ]
        let w = try write(records, to: dir)
        #expect(w.currentStats.written == UInt64(records.count))
        let (back, report) = try readAll(dir)
        #expect(back == records)
        #expect(report.damages.isEmpty)
        #expect(try JournalReader(directory: dir.path).verify().damages.isEmpty)
    }

    @Test("files are created 0600 in a 0700 directory: this is browsing history")
    func permissions() throws {
        let dir = TempDirectory()
        _ = try write([.event(webLink(1))], to: dir)
        let attributes = try FileManager.default.attributesOfItem(atPath: dir.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o700)
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
            let a = try FileManager.default.attributesOfItem(atPath: dir.file(name))
            #expect((a[.posixPermissions] as? Int) == 0o600, "\(name)")
        }
    }

    @Test("segments rotate by size, each closed one is indexed; one device's history reads the same with and without the index, reading less")
    func indexes() throws {
        let dir = TempDirectory()
        var records: [JournalRecord] = []
        for i in 0..<6000 {
            // Devices active one after another (as taps see them): each one's records sit in a few batches.
            records.append(.event(webLink(i, device: "10.45.1.\(i / 500)", host: "h\(i % 9).example")))
        }
        _ = try write(records, to: dir) { $0.segmentBytes = 64 * 1024; $0.batchRecords = 100 }
        #expect(dir.segments.count >= 3)
        let indexes = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".idx") }
        #expect(indexes.count == dir.segments.count)
        let device = IPAddress("10.45.1.7")!  // records 3500..<4000
        let (withIndex, r1) = try readAll(dir, device: device)
        let (scanned, r2) = try readAll(dir, device: device, useIndex: false)
        let expected = records.filter { $0.device == device }
        #expect(withIndex == expected && scanned == expected)
        #expect(r1.bytesRead < r2.bytesRead / 2, "index read \(r1.bytesRead) bytes, full scan \(r2.bytesRead)")
        #expect(r1.segmentsScanned == 0)
    }

    @Test("a torn batch at the end of the last segment is cut at start; everything before it is kept")
    func tornTail() throws {
        let dir = TempDirectory()
        let records = (0..<500).map { JournalRecord.event(webLink($0)) }
        _ = try write(records, to: dir) { $0.batchRecords = 50 }
        let segment = dir.file(dir.segments.last!)
        let intact = try Data(contentsOf: URL(fileURLWithPath: segment))
        // A crash in the middle of writing a batch: part of an envelope and frame after the last good batch.
        let torn = intact + intact[SegmentFormat.headerSize..<(SegmentFormat.headerSize + 300)]
        try torn.write(to: URL(fileURLWithPath: segment))
        let w = try JournalWriter(directory: dir.path)
        #expect(w.recovery.cutBytes == 300)
        #expect(w.recovery.damages.count == 1)
        w.start(); w.finish()
        let (back, report) = try readAll(dir)
        #expect(back == records && report.damages.isEmpty)
        #expect(try Data(contentsOf: URL(fileURLWithPath: segment)) == intact)
    }

    @Test("a flipped bit is detected and located; the other batches stay readable", arguments: [0, 4, 30, 60, 200])
    func flippedBit(at position: Int) throws {
        let dir = TempDirectory()
        let records = (0..<400).map { JournalRecord.event(webLink($0)) }
        _ = try write(records, to: dir) { $0.batchRecords = 100 }
        let segment = dir.file(dir.segments.first!)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: segment))
        // Find the second batch's envelope, flip one bit at `position` bytes into it.
        let second = try #require(bytes.withUnsafeBytes { raw -> Int? in
            guard let first = SegmentFormat.findEnvelope(in: raw, from: 0) else { return nil }
            return SegmentFormat.findEnvelope(in: raw, from: first + 1)
        })
        bytes[second + position] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: segment))
        let v = try JournalReader(directory: dir.path).verify()
        #expect(v.damages.count == 1)
        #expect(v.damages.first?.segment == dir.segments.first && v.damages.first?.offset == second)
        #expect(v.records == 300, "three of the four batches are still read")
        let (back, _) = try readAll(dir, useIndex: false)
        #expect(back == Array(records[0..<100] + records[200...]))
    }

    @Test("one writer at a time: a second one is refused with a clear error")
    func locked() throws {
        let dir = TempDirectory()
        let w = try JournalWriter(directory: dir.path)
        #expect(throws: JournalError.self) { try JournalWriter(directory: dir.path) }
        do {
            _ = try JournalWriter(directory: dir.path)
        } catch {
            #expect(error.kind == .locked && error.message.contains("in use"))
        }
        w.start(); w.finish()
    }

    @Test("a failed fsync: what it covered is never acknowledged (counted as lost), writing goes on in a new segment whose fsyncs count")
    func failedFsync() throws {
        let dir = TempDirectory()
        var o = JournalOptions()
        o.dropWhenFull = false
        o.fsync = .batch
        o.batchRecords = 10
        o.flushMilliseconds = 10_000
        let lines = Mutex<[String]>([])
        let w = try JournalWriter(directory: dir.path, options: o, log: { line in lines.withLock { $0.append(line) } })
        w.start()
        /// Waits (bounded) until the writer has written `n` records.
        func waitWritten(_ n: UInt64) {
            let deadline = Date().addingTimeInterval(10)
            while w.currentStats.written < n && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        }
        for i in 0..<50 { w.append(.event(webLink(i))) }
        waitWritten(50)
        #expect(w.currentStats.acknowledged == 50)
        // The next fsync fails: the batch it should have made durable is written but never acknowledged.
        Files.injectFsyncFailures(1, under: dir.path)
        for i in 50..<60 { w.append(.event(webLink(i))) }
        waitWritten(60)
        var s = w.currentStats
        #expect(s.written == 60 && s.acknowledged == 50 && s.droppedWriteError == 10, "\(s)")
        #expect(s.segmentsClosed == 1, "the segment whose fsync failed is closed")
        for i in 60..<100 { w.append(.event(webLink(i))) }
        w.finish()
        s = w.currentStats
        #expect(s.written == 100 && s.acknowledged == 90 && s.droppedWriteError == 10, "\(s)")
        let logged = lines.withLock { $0 }
        #expect(logged.contains { $0.contains("cannot fsync") && $0.contains("10 written records may not be on disk") },
                "\(logged)")
        // Two segments; the data itself reached the kernel, so everything reads back and verifies.
        #expect(try JournalReader(directory: dir.path).segments().count == 2)
        let (back, _) = try readAll(dir)
        #expect(back.count == 100)
        #expect(try JournalReader(directory: dir.path).verify().damages.isEmpty)
    }

    @Test("retention by size removes the oldest closed segments")
    func retention() throws {
        let dir = TempDirectory()
        let records = (0..<8000).map { JournalRecord.event(webLink($0)) }
        _ = try write(records, to: dir) { $0.segmentBytes = 32 * 1024; $0.batchRecords = 200 }
        let all = dir.segments
        #expect(all.count >= 4)
        var o = JournalOptions()
        o.retainBytes = 70 * 1024
        let w = try JournalWriter(directory: dir.path, options: o)
        w.start(); w.finish()
        let kept = dir.segments
        #expect(kept.count < all.count && kept.last == all.last, "the newest segments stay")
        let total = kept.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: dir.file($1))[.size] as? Int) ?? 0) }
        #expect(total <= 70 * 1024)
        #expect(w.currentStats.segmentsRemoved == UInt64(all.count - kept.count))
    }

    @Test("LZ4 compresses URL-heavy records at least 3x")
    func ratio() throws {
        let dir = TempDirectory()
        let records = (0..<20_000).map { JournalRecord.event(webLink($0, device: "10.45.0.\($0 % 200)", host: "h\($0 % 30).cdn.example")) }
        let w = try write(records, to: dir)
        let s = w.currentStats
        #expect(Double(s.rawBytes) / Double(s.compressedBytes) >= 3, "raw \(s.rawBytes) written \(s.compressedBytes)")
    }
}

@Suite("Journal encoding details")
struct JournalEncodingTests {
    /// The header names of an encoded web link, in the order they were written.
    static func headerNames(_ e: StateEvent) -> [String] {
        var w = ByteWriter()
        JournalRecord.event(e).encode(into: &w)
        return w.withUnsafeBytes { raw in
            var r = ByteReader(UnsafeRawBufferPointer(rebasing: raw[JournalRecord.headerSize...]))
            _ = r.u64(); _ = r.address(); _ = r.address(); _ = r.u16(); _ = r.address(); _ = r.u16()
            let nv = Int(r.u8()!)
            for _ in 0..<nv { _ = r.u16() }
            _ = r.u8(); _ = r.u32()
            var names: [String] = []
            while r.remaining > 0 {
                let tag = r.u8()!, n = Int(r.u16()!), v = r.view(n)!
                if tag == 23 { names.append(String(decoding: v[1..<1 + Int(v[0])], as: UTF8.self)) }
            }
            return names
        }
    }

    @Test("response headers are written in one order whatever the dictionary's, known names first, others after; they read back the same")
    func headerOrder() throws {
        var e = webLink(1)
        let known = HeaderOrder.names.map { $0.description }
        // The order names every header the HTTP parser keeps (a kept header missing from it would still be
        // written, after the known ones, and compress worse).
        #expect(Set(known) == HTTPResponse.kept)
        #expect(known.count == HTTPResponse.kept.count)
        var headers: [String: String] = [:]
        for (i, name) in known.reversed().enumerated() { headers[name] = "v\(i)" }
        headers["x-served-by"] = "cache-fra"
        headers["alt-svc"] = "h3=\":443\""
        e.responseHeaders = headers
        let names = Self.headerNames(e)
        #expect(Array(names.prefix(known.count)) == known)
        #expect(Set(names.dropFirst(known.count)) == ["x-served-by", "alt-svc"])
        // The same headers built in other orders (other dictionaries, other iteration orders) encode the same.
        for _ in 0..<20 {
            var other: [String: String] = [:]
            for (name, value) in headers.shuffled() { other[name] = value }
            var shuffled = e
            shuffled.responseHeaders = other
            #expect(Array(Self.headerNames(shuffled).prefix(known.count)) == known)
        }
        // A name that looks like a known one by its length and first byte is not taken for it.
        e.responseHeaders = ["etag": "1", "eta9": "2", "cache-contro1": "3", "age": "4"]
        #expect(Array(Self.headerNames(e).prefix(2)) == ["etag", "age"])
        var all = webLink(2)
        all.responseHeaders = headers
        let dir = TempDirectory()
        _ = try write([.event(e), .event(all)], to: dir)
        #expect(try readAll(dir).0 == [.event(e), .event(all)])
    }

    @Test("the device set numbers devices in insertion order, tells IPv4 from IPv6 with the same bits, and empties by generation")
    func deviceSet() {
        var set = DeviceSet(capacity: 4)
        let v4 = IPAddress(ipv4: 0x0A00_0001)
        let v6 = IPAddress(high: 0, low: 0x0A00_0001, isIPv6: true)
        #expect(set.insert(v4) == 0)
        #expect(set.insert(v6) == 1)
        #expect(set.insert(v4) == 0)
        // Past its capacity it grows and keeps the numbers.
        for i in 0..<1000 { #expect(set.insert(IPAddress(ipv4: 0x0A01_0000 + UInt32(i))) == 2 + i) }
        #expect(set.insert(v6) == 1)
        #expect(set.members.count == 1002)
        for round in 0..<3 {
            set.removeAll()
            #expect(set.members.isEmpty)
            #expect(set.insert(IPAddress(ipv4: 0x0A01_0005)) == 0, "round \(round)")
            #expect(set.insert(v6) == 1)
            #expect(set.insert(IPAddress(ipv4: 0x0A01_0005)) == 0)
            #expect(set.members == [IPAddress(ipv4: 0x0A01_0005), v6])
        }
    }

    @Test("every LZ4 acceleration writes frames that read back and verify", arguments: [1, 2, 8, 64])
    func acceleration(_ a: Int) throws {
        let dir = TempDirectory()
        let records = (0..<3000).map { JournalRecord.event(webLink($0, device: "10.45.0.\($0 % 50)")) }
        let w = try write(records, to: dir) { $0.lz4Acceleration = a; $0.batchRecords = 500 }
        #expect(w.currentStats.compressedBytes < w.currentStats.rawBytes)
        #expect(try readAll(dir).0 == records)
        #expect(try JournalReader(directory: dir.path).verify().damages.isEmpty)
    }
}

@Suite("Per-device state store")
struct StateStoreTests {
    @Test("links deduplicated by URL with hits and validators; ranking puts cacheable first, then recency x frequency")
    func links() {
        let store = StateStore()
        for i in 0..<100 { store.apply(.event(webLink(i))) }
        var uncacheable = webLink(200)
        uncacheable.url = "http://cdn.example/api/private"
        uncacheable.cacheable = false
        for _ in 0..<30 { store.apply(.event(uncacheable)) }
        store.apply(.event(serverName(300, quic: true)))
        let snap = try! #require(store.snapshot(device: IPAddress("10.45.0.9")!))
        #expect(snap.apps.count == 2)
        let web = try! #require(snap.apps.first { $0.key.endpoint == "edge-a" })
        #expect(web.links.count == 101, "100 distinct URLs and the uncacheable one")
        #expect(web.links.values.reduce(0) { $0 + $1.hits } == 130)
        let quic = try! #require(snap.apps.first { $0.key.endpoint == "[2001:db8::443]:443" })
        #expect(quic.serverNames == ["video.example"] && quic.alpn == ["h3"] && quic.transports == ["quic"])
        let ranked = store.rankedLinks(device: IPAddress("10.45.0.9")!)
        #expect(ranked.last?.link.url == "http://cdn.example/api/private", "the uncacheable link ranks last despite 30 hits")
        #expect(ranked.first?.link.cacheable == true && ranked.first!.link.etag != nil)
        #expect(zip(ranked.dropLast(), ranked.dropLast().dropFirst()).allSatisfy { $0.score >= $1.score })
    }

    @Test("a link takes the newest response's headers: each kept field, none left from an older response")
    func linkHeaders() throws {
        let store = StateStore()
        var first = webLink(1)
        first.responseHeaders = ["cache-control": "public, max-age=60", "expires": "Thu, 26 Nov 2026 10:00:00 GMT",
                                 "etag": "\"v1\"", "last-modified": "Wed, 25 Nov 2026 10:00:00 GMT",
                                 "vary": "Accept-Encoding", "content-type": "image/png", "content-length": "1234",
                                 "via": "1.1 edge-a", "x-other": "ignored"]
        store.apply(.event(first))
        let device = IPAddress("10.45.0.9")!
        func link() throws -> LinkState {
            let apps = try #require(store.snapshot(device: device)).apps
            return try #require(apps.first?.links[first.url!])
        }
        var l = try link()
        #expect(l.cacheControl == "public, max-age=60" && l.expires == "Thu, 26 Nov 2026 10:00:00 GMT")
        #expect(l.etag == "\"v1\"" && l.lastModified == "Wed, 25 Nov 2026 10:00:00 GMT")
        #expect(l.vary == "Accept-Encoding" && l.contentType == "image/png" && l.contentLength == 1234)
        // A newer response of the same URL with fewer headers: what it lacks is gone, a bad length is nil.
        var second = webLink(2)
        second.url = first.url
        second.responseHeaders = ["etag": "\"v2\"", "content-length": "12x"]
        store.apply(.event(second))
        l = try link()
        #expect(l.hits == 2 && l.etag == "\"v2\"" && l.contentLength == nil)
        #expect(l.cacheControl == nil && l.expires == nil && l.lastModified == nil && l.vary == nil
            && l.contentType == nil)
        // An older response (it arrived late) changes only the counts.
        var older = webLink(0)
        older.url = first.url
        store.apply(.event(older))
        l = try link()
        #expect(l.hits == 3 && l.etag == "\"v2\"" && l.firstSeen == older.timestampNanoseconds)
    }

    @Test("bounded: least recently seen devices and links go first, every eviction counted")
    func bounds() {
        var limits = StoreLimits()
        limits.maxDevices = 100
        limits.maxLinksPerApp = 20
        let store = StateStore(limits: limits)
        for i in 0..<1000 { store.apply(.event(webLink(i, device: "10.46.\(i / 250).\(i % 250)"))) }
        let s = store.stats
        #expect(s.devices <= 100 && s.devicesEvicted >= 900)
        #expect(store.snapshot(device: IPAddress("10.46.3.249")!) != nil, "the newest device stays")
        #expect(store.snapshot(device: IPAddress("10.46.0.0")!) == nil)
        let one = StateStore(limits: limits)
        for i in 0..<500 { one.apply(.event(webLink(i))) }
        let app = one.snapshot(device: IPAddress("10.45.0.9")!)!.apps[0]
        #expect(app.links.count <= 20 && one.stats.linksEvicted > 0)
    }

    /// Nothing dropped; batches of 100 records and 16 KB segments: 3000 records close a dozen segments.
    static var smallSegments: JournalOptions {
        var o = JournalOptions()
        o.dropWhenFull = false
        o.segmentBytes = 16 * 1024
        o.batchRecords = 100
        return o
    }

    /// A store with every kind of state: web links with and without headers, server names, evictions.
    static func busyStore(limits: StoreLimits = StoreLimits()) -> StateStore {
        let store = StateStore(limits: limits)
        for i in 0..<600 {
            let device = "10.48.0.\(i % 7)"
            store.apply(.event(i % 5 == 0 ? serverName(i, device: device, quic: i % 10 == 0)
                                          : webLink(i, device: device, host: "h\(i % 4).example",
                                                    status: i % 9 == 0 ? nil : 200, cacheable: i % 6 == 0 ? nil : i % 2 == 0,
                                                    proxy: i % 3 == 0 ? nil : "edge-\(i % 2)")))
        }
        return store
    }

    func expectSame(_ a: StateStore, _ b: StateStore, devices: [String], _ comment: Comment) {
        #expect(a.stats == b.stats, comment)
        for text in devices {
            let d = IPAddress(text)!
            #expect(a.snapshot(device: d) == b.snapshot(device: d), comment)
            #expect(a.rankedLinks(device: d) == b.rankedLinks(device: d), comment)
        }
    }

    @Test("a checkpoint holds the whole store: loaded into an empty one, every snapshot, ranking and count is equal")
    func checkpointRoundTrip() throws {
        let dir = TempDirectory()
        var limits = StoreLimits()
        limits.maxDevices = 5
        limits.maxLinksPerApp = 2
        let store = Self.busyStore(limits: limits)
        for i in 0..<50 { store.apply(.event(webLink(i))) }  // 50 URLs of one app (device 10.45.0.9)
        try FileManager.default.createDirectory(atPath: dir.path, withIntermediateDirectories: true)
        #expect(store.stats.devicesEvicted > 0 && store.stats.linksEvicted > 0, "the store has evicted: counters carry")
        let size = try StoreCheckpoint.write(store, segment: 42, directory: dir.path)
        let mode = try FileManager.default.attributesOfItem(atPath: dir.path + "/" + StoreCheckpoint.fileName)[.posixPermissions] as? Int
        #expect(mode == 0o600, "browsing history: owner only")
        let loaded = StateStore(limits: limits)
        let c = try #require(try StoreCheckpoint.load(into: loaded, directory: dir.path))
        #expect(c.segment == 42 && c.bytes == size && c.devices == store.stats.devices)
        let devices = (0..<7).map { "10.48.0.\($0)" } + ["10.45.0.9"]
        expectSame(store, loaded, devices: devices, "checkpoint round trip")
        // The loaded store goes on like the original.
        for i in 600..<700 {
            let e = webLink(i, device: "10.48.0.\(i % 7)", host: "h\(i % 4).example")
            store.apply(.event(e)); loaded.apply(.event(e))
        }
        expectSame(store, loaded, devices: devices, "after more records")
        #expect(try StoreCheckpoint.load(into: StateStore(), directory: TempDirectory().path) == nil, "none: nil")
    }

    @Test("a damaged checkpoint, or one made with other limits, is refused with the reason, and the store is untouched")
    func checkpointRefused() throws {
        let dir = TempDirectory()
        let store = Self.busyStore()
        try FileManager.default.createDirectory(atPath: dir.path, withIntermediateDirectories: true)
        try StoreCheckpoint.write(store, segment: 3, directory: dir.path)
        let path = dir.path + "/" + StoreCheckpoint.fileName
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        var other = StoreLimits()
        other.maxLinksPerApp = 7
        do {
            _ = try StoreCheckpoint.load(into: StateStore(limits: other), directory: dir.path)
            Issue.record("a checkpoint of other limits was loaded")
        } catch {
            #expect(error.kind == .usage && error.message.contains("other store limits"), "\(error.message)")
        }
        // A flipped bit anywhere (header, frame header, content) and a cut file.
        for (offset, what) in [(9, "CRC"), (14, "segment"), (22, "length"), (good.count / 2, "content"), (good.count - 1, "end")] {
            var bytes = good
            bytes[offset] ^= 0x10
            try bytes.write(to: URL(fileURLWithPath: path))
            let target = StateStore()
            do {
                _ = try StoreCheckpoint.load(into: target, directory: dir.path)
                Issue.record("a checkpoint with a flipped bit in its \(what) was loaded")
            } catch {
                #expect(error.kind == .corrupt && error.message.contains(StoreCheckpoint.fileName), "\(what): \(error.message)")
            }
            #expect(target.stats == StoreStats(), "\(what): the store is left empty")
        }
        try good.prefix(good.count - 10).write(to: URL(fileURLWithPath: path))
        #expect(throws: JournalError.self) { try StoreCheckpoint.load(into: StateStore(), directory: dir.path) }
    }

    @Test("a restart from the checkpoint of the last closed segment plus the segments after it equals a full rebuild")
    func checkpointRestart() throws {
        let dir = TempDirectory()
        let live = StateStore()
        let o = Self.smallSegments
        let checkpoints = Mutex<[UInt64]>([])
        let path = dir.path
        let w = try JournalWriter(directory: path, options: o, observer: { live.apply($0) },
                                  segmentClosed: { n in
                                      // Not at every close: the restart then has segments to read after it.
                                      guard n % 3 == 1,
                                            (try? StoreCheckpoint.write(live, segment: n, directory: path)) != nil
                                      else { return }
                                      checkpoints.withLock { $0.append(n) }
                                  })
        w.start()
        for i in 0..<3000 {
            w.append(.event(i % 4 == 0 ? serverName(i, device: "10.47.0.\(i % 13)", quic: i % 8 == 0)
                                        : webLink(i, device: "10.47.0.\(i % 13)", host: "h\(i % 5).example")))
        }
        w.finish()
        let last = try #require(checkpoints.withLock { $0.last })
        let segments = try JournalReader(directory: dir.path).segments()
        #expect(segments.contains { $0 > last }, "segments were written after the last checkpoint")
        let restarted = StateStore()
        let c = try #require(try StoreCheckpoint.load(into: restarted, directory: dir.path))
        #expect(c.segment == last)
        var after = 0
        _ = try JournalReader(directory: dir.path).read(afterSegment: c.segment) { restarted.apply($0); after += 1 }
        #expect(after > 0 && after < 3000, "only the records after the checkpoint are read: \(after)")
        let full = StateStore()
        _ = try JournalReader(directory: dir.path).read { full.apply($0) }
        expectSame(restarted, full, devices: (0..<13).map { "10.47.0.\($0)" }, "checkpoint + tail vs every record")
        expectSame(restarted, live, devices: (0..<13).map { "10.47.0.\($0)" }, "checkpoint + tail vs the live store")
    }

    @Test("the checkpointer writes off the journal thread as segments close, and its finish covers the last one")
    func checkpointer() throws {
        let dir = TempDirectory()
        let live = StateStore()
        let checkpointer = StoreCheckpointer(store: live, directory: dir.path, log: { Issue.record("\($0)") })
        let w = try JournalWriter(directory: dir.path, options: Self.smallSegments, observer: { live.apply($0) },
                                  segmentClosed: { checkpointer.segmentClosed($0) })
        w.start()
        for i in 0..<3000 { w.append(.event(webLink(i, device: "10.49.0.\(i % 11)", host: "h\(i % 3).example"))) }
        w.finish()
        checkpointer.finish()
        let last = try #require(try JournalReader(directory: dir.path).segments().last)
        let written = checkpointer.written
        #expect(written.count >= 1 && written.segment == last && written.bytes > 0)
        let restarted = StateStore()
        #expect(try StoreCheckpoint.load(into: restarted, directory: dir.path)?.segment == last)
        var after = 0
        _ = try JournalReader(directory: dir.path).read(afterSegment: last) { _ in after += 1 }
        #expect(after == 0)
        expectSame(restarted, live, devices: (0..<11).map { "10.49.0.\($0)" }, "checkpointer")
    }

    @Test("a start uses the checkpoint unless retention removed a segment it holds records of; that one is removed")
    func checkpointRetention() throws {
        let dir = TempDirectory()
        let live = StateStore()
        // A new journal: the store draws from the writer's first segment on.
        guard case .none = StoreCheckpoint.restore(into: live, directory: dir.path, firstNewSegment: 1) else {
            Issue.record("a checkpoint was found in a new directory")
            return
        }
        let checkpointer = StoreCheckpointer(store: live, directory: dir.path, log: { Issue.record("\($0)") })
        let w = try JournalWriter(directory: dir.path, options: Self.smallSegments, observer: { live.apply($0) },
                                  segmentClosed: { checkpointer.segmentClosed($0) })
        w.start()
        for i in 0..<3000 { w.append(.event(webLink(i, device: "10.50.0.\(i % 9)"))) }
        w.finish()
        checkpointer.finish()
        let devices = (0..<9).map { "10.50.0.\($0)" }
        let restarted = StateStore()
        guard case .checkpoint(let c) = StoreCheckpoint.restore(into: restarted, directory: dir.path, firstNewSegment: 99)
        else {
            Issue.record("the checkpoint was not used with every segment still there")
            return
        }
        #expect(c.segment == checkpointer.written.segment)
        expectSame(restarted, live, devices: devices, "nothing removed")
        // Retention removes the oldest segment: the checkpoint holds records the journal no longer has.
        try FileManager.default.removeItem(atPath: dir.file("seg-0000000001.stj"))
        try FileManager.default.removeItem(atPath: dir.file("seg-0000000001.idx"))
        let after = StateStore()
        guard case .refused(let why) = StoreCheckpoint.restore(into: after, directory: dir.path, firstNewSegment: 99)
        else {
            Issue.record("a checkpoint holding records of a removed segment was used")
            return
        }
        #expect(why.contains("segment 1"), "\(why)")
        #expect(after.stats == StoreStats(), "the store is left empty, to be rebuilt from the segments there are")
        #expect(!FileManager.default.fileExists(atPath: dir.file(StoreCheckpoint.fileName)), "and the checkpoint removed")
    }

    @Test("a restart rebuilds the same state store from the journal")
    func rebuild() throws {
        let dir = TempDirectory()
        let live = StateStore()
        var o = JournalOptions()
        o.dropWhenFull = false
        o.segmentBytes = 32 * 1024
        let w = try JournalWriter(directory: dir.path, options: o, observer: { live.apply($0) })
        w.start()
        for i in 0..<3000 {
            w.append(.event(i % 4 == 0 ? serverName(i, device: "10.47.0.\(i % 13)", quic: i % 8 == 0)
                                        : webLink(i, device: "10.47.0.\(i % 13)", host: "h\(i % 5).example")))
        }
        w.finish()
        let rebuilt = StateStore()
        _ = try JournalReader(directory: dir.path).read { rebuilt.apply($0) }
        #expect(rebuilt.stats.devices == 13)
        for i in 0..<13 {
            let d = IPAddress("10.47.0.\(i)")!
            #expect(rebuilt.snapshot(device: d) == live.snapshot(device: d))
            #expect(rebuilt.rankedLinks(device: d) == live.rankedLinks(device: d))
        }
    }
}
