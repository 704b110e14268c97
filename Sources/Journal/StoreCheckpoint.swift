import Decode
import Extract
import Rings
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A checkpoint of the state store, so that a start rebuilds the store from it and the segments written after it
/// instead of from every record of the journal (which took minutes per GB). Written when a segment closes: it then
/// holds every record of that segment and of the segments before it, and of nothing after.
///
///     file   := "STCKPT01" | u32 CRC-32C of the next 24 bytes | u64 segment | u64 raw length | u64 frame length
///               | LZ4 frame (its header, block and content checksums check the rest: a CRC of the whole file took
///               longer than the LZ4 compression of a 1 M-link store)
///     body   := limits (3 × u64) | u64 clock | u64 oldest segment drawn from | stats (7 × u64) | u32 n | n × device
///     device := addr | u64 first | u64 last | u64 events | u64 touched | u32 n | n × (app id, app)
///     app id := u8 has proxy | [str proxy] | addr server | u16 port | u8 has host | [str host]
///     app    := str endpoint | str host | opt str proxy | str server | u64 first | u64 last | u64 events
///               | u64 links evicted | 3 × (u32 n | n × str) | u32 n | n × link
///     link   := str url | str method | opt i64 status | u64 hits | u64 first | u64 last | u8 cacheable (0 none,
///               1 no, 2 yes) | 6 × opt str (cache-control, expires, etag, last-modified, vary, content-type)
///               | opt i64 content-length
///     str    := u32 length | UTF-8;   opt x := u8 present | [x]
///
/// The file is replaced atomically (temporary file, fsync, rename), so a crash leaves the previous checkpoint or
/// the new one. One that does not verify, or that was made with other store limits, is not used: the store is
/// then rebuilt from every record, as without a checkpoint. Compaction removes it (it moves old records into new
/// segments, after the checkpoint's).
public enum StoreCheckpoint {
    public static let fileName = "store.checkpoint"
    static let magic = Array("STCKPT01".utf8)
    static let headerSize = 36

    /// What a checkpoint holds, as `load` found it.
    public struct Loaded: Sendable {
        /// Every record of the segments up to this one is in the store; those after it are not.
        public let segment: UInt64
        public let devices: Int
        public let bytes: Int
    }

    /// Writes `store` as it is now as the checkpoint of everything up to `segment`; returns the file's size.
    /// The store is copied under its lock (copy on write: no element is copied) and encoded outside it, so queries
    /// are not held up.
    @discardableResult
    public static func write(_ store: StateStore, segment: UInt64, directory: String) throws(JournalError) -> Int {
        try write(store.state.withLock { $0 }, limits: store.limits, segment: segment, directory: directory)
    }

    static func write(_ state: StateStore.State, limits: StoreLimits, segment: UInt64,
                      directory: String) throws(JournalError) -> Int {
        var w = ByteWriter(capacity: 1 << 20)
        encode(state, limits: limits, into: &w)
        var out: [UInt8] = []
        let frameLength = try w.withUnsafeBytes { raw throws(JournalError) in
            try LZ4Frame.compress(raw, into: &out, prefix: headerSize)
        }
        var header = ByteWriter(capacity: headerSize)
        header.raw(magic)
        header.u32(0)  // the CRC, below
        header.u64(segment)
        header.u64(UInt64(w.count))
        header.u64(UInt64(frameLength))
        header.withUnsafeBytes { h in out.withUnsafeMutableBytes { $0.copyMemory(from: h) } }
        let crc = out.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[12..<headerSize])) }
        out.withUnsafeMutableBytes { $0.storeBytes(of: crc.littleEndian, toByteOffset: 8, as: UInt32.self) }
        out.removeSubrange((headerSize + frameLength)...)
        try Files.writeAtomically(directory + "/" + fileName, out)
        Files.syncDirectory(directory)
        return out.count
    }

    /// Replaces the content of `store` (empty, not yet in use) with the checkpoint in `directory`. Nil when there
    /// is none; an error saying why when it cannot be used (the caller rebuilds from every record instead).
    public static func load(into store: StateStore, directory: String) throws(JournalError) -> Loaded? {
        let path = directory + "/" + fileName
        guard Files.size(path) != nil else { return nil }
        let bytes = try Files.read(path)
        let parsed = bytes.withUnsafeBytes { parse($0, path: path, limits: store.limits) }
        let (segment, state) = try parsed.get()
        store.state.withLock { $0 = state }
        return Loaded(segment: segment, devices: state.devices.count, bytes: bytes.count)
    }

    /// The checkpoint in `directory` checked whole (checksums, content) without loading it anywhere: nil when there
    /// is none, an error saying why it could not be used. `journal stats` shows it.
    public static func inspect(directory: String) throws(JournalError) -> Loaded? {
        let path = directory + "/" + fileName
        guard Files.size(path) != nil else { return nil }
        let bytes = try Files.read(path)
        let (segment, state) = try bytes.withUnsafeBytes { parse($0, path: path, limits: nil) }.get()
        return Loaded(segment: segment, devices: state.devices.count, bytes: bytes.count)
    }

    /// `limits`: the store's, which the checkpoint's must equal (nil: any).
    private static func parse(_ file: UnsafeRawBufferPointer, path: String, limits expected: StoreLimits?)
        -> Result<(UInt64, StateStore.State), JournalError>
    {
        func bad(_ why: String) -> Result<(UInt64, StateStore.State), JournalError> {
            .failure(JournalError(.corrupt, "\(path): \(why)"))
        }
        var r = ByteReader(file)
        guard let m = r.view(8), m.elementsEqual(magic), let crc = r.u32(), let segment = r.u64(),
              let rawLength = r.u64(), let frameLength = r.u64()
        else { return bad("not a state store checkpoint statetap can read") }
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: file[12..<headerSize])) == crc else {
            return bad("checksum mismatch")
        }
        guard frameLength == UInt64(r.remaining), let frame = r.view(r.remaining), rawLength < UInt64(Int.max) else {
            return bad("\(file.count) bytes where the header says \(UInt64(headerSize) &+ frameLength)")
        }
        let content: [UInt8]
        switch LZ4FrameDecoder().decompress(frame, expectedLength: Int(rawLength)) {
        case .success(let c): content = c
        case .failure(let damage): return bad(damage.reason)
        }
        return content.withUnsafeBytes { body in
            var b = ByteReader(body)
            guard let limits = StoreLimits(&b) else { return bad("cut short in its store limits") }
            guard expected == nil || limits == expected else {
                return .failure(JournalError(.usage, "\(path) was made with other store limits (\(limits)); "
                                             + "not used with \(expected!)"))
            }
            guard let state = decodeState(&b), b.remaining == 0 else { return bad("its content does not decode") }
            return .success((segment, state))
        }
    }

    /// How a start's store began.
    public enum Restored: Sendable {
        /// From this checkpoint: read the segments after `segment`.
        case checkpoint(Loaded)
        /// Empty: there is no checkpoint.
        case none
        /// Empty: the checkpoint could not be used, for this reason.
        case refused(String)
    }

    /// What a start does before reading the journal into `store` (empty): loads the checkpoint when it can be
    /// used. It cannot when it fails its checks, was made with other limits, or holds records of a segment that
    /// is gone (retention removed it: the store must not keep what the journal no longer does; such a checkpoint
    /// is removed). `firstNewSegment`: the writer's first segment, the oldest the store draws from when the
    /// journal has none yet.
    public static func restore(into store: StateStore, directory: String, firstNewSegment: UInt64) -> Restored {
        let oldest = (try? JournalReader(directory: directory).segments().first) ?? firstNewSegment
        func fresh(_ outcome: Restored) -> Restored {
            store.state.withLock { $0 = StateStore.State(); $0.sinceSegment = oldest }
            return outcome
        }
        let loaded: Loaded?
        do throws(JournalError) {
            loaded = try load(into: store, directory: directory)
        } catch {
            return fresh(.refused(error.message))
        }
        guard let c = loaded else { return fresh(.none) }
        let since = store.state.withLock { $0.sinceSegment }
        guard oldest <= since else {
            remove(directory: directory)
            return fresh(.refused("it holds records of segment \(since), which is gone (retention removes the "
                                  + "oldest segments); removed"))
        }
        return .checkpoint(c)
    }

    /// Removes the checkpoint (compaction does, before it moves records).
    public static func remove(directory: String) {
        Files.remove(directory + "/" + fileName)
        Files.syncDirectory(directory)
    }

    // MARK: - Body

    static func encode(_ s: StateStore.State, limits: StoreLimits, into w: inout ByteWriter) {
        w.u64(UInt64(limits.maxDevices)); w.u64(UInt64(limits.maxAppsPerDevice)); w.u64(UInt64(limits.maxLinksPerApp))
        w.u64(s.clock)
        w.u64(s.sinceSegment)
        let t = s.stats
        for v in [UInt64(t.devices), UInt64(t.apps), UInt64(t.links), t.recordsApplied, t.devicesEvicted,
                  t.appsEvicted, t.linksEvicted] { w.u64(v) }
        w.u32(UInt32(s.devices.count))
        for d in s.devices.values {
            w.address(d.address)
            w.u64(d.firstSeen); w.u64(d.lastSeen); w.u64(UInt64(d.events)); w.u64(d.touched)
            w.u32(UInt32(d.apps.count))
            for (id, app) in d.apps {
                w.optionalString(id.proxy)
                w.address(id.server); w.u16(id.port)
                w.optionalString(id.host)
                encode(app, into: &w)
            }
        }
    }

    private static func encode(_ a: AppState, into w: inout ByteWriter) {
        w.string32(a.key.endpoint); w.string32(a.key.host)
        w.optionalString(a.proxy)
        w.string32(a.server)
        w.u64(a.firstSeen); w.u64(a.lastSeen); w.u64(UInt64(a.events)); w.u64(UInt64(a.linksEvicted))
        w.strings(a.serverNames); w.strings(a.alpn); w.strings(a.transports)
        w.u32(UInt32(a.links.count))
        for l in a.links.values {
            w.string32(l.url); w.string32(l.method)
            w.optionalInt(l.status)
            w.u64(UInt64(l.hits)); w.u64(l.firstSeen); w.u64(l.lastSeen)
            w.u8(l.cacheable == nil ? 0 : l.cacheable! ? 2 : 1)
            w.optionalString(l.cacheControl); w.optionalString(l.expires); w.optionalString(l.etag)
            w.optionalString(l.lastModified); w.optionalString(l.vary); w.optionalString(l.contentType)
            w.optionalInt(l.contentLength)
        }
    }

    static func decodeState(_ r: inout ByteReader) -> StateStore.State? {
        var s = StateStore.State()
        guard let clock = r.u64(), let since = r.u64() else { return nil }
        s.clock = clock
        s.sinceSegment = since
        var v = [UInt64]()
        for _ in 0..<7 {
            guard let x = r.u64() else { return nil }
            v.append(x)
        }
        s.stats = StoreStats(devices: Int(v[0]), apps: Int(v[1]), links: Int(v[2]), recordsApplied: v[3],
                             devicesEvicted: v[4], appsEvicted: v[5], linksEvicted: v[6])
        guard let n = r.u32() else { return nil }
        s.devices.reserveCapacity(min(Int(n), r.remaining / 37))  // counts are not trusted beyond the bytes left
        for _ in 0..<n {
            guard let address = r.address(), let first = r.u64(), let last = r.u64(), let events = r.u64(),
                  let touched = r.u64(), let apps = r.u32() else { return nil }
            var d = StateStore.Device(address: address, firstSeen: first, lastSeen: last, events: Int(events),
                                      touched: touched)
            d.apps.reserveCapacity(min(Int(apps), r.remaining / 60))
            for _ in 0..<apps {
                guard let proxy = r.optionalString(), let server = r.address(), let port = r.u16(),
                      let host = r.optionalString(), let app = decodeApp(&r) else { return nil }
                d.apps[StateStore.AppID(proxy: proxy, server: server, port: port, host: host)] = app
            }
            s.devices[address] = d
        }
        return s
    }

    private static func decodeApp(_ r: inout ByteReader) -> AppState? {
        guard let endpoint = r.string32(), let host = r.string32(), let proxy = r.optionalString(),
              let server = r.string32(), let first = r.u64(), let last = r.u64(), let events = r.u64(),
              let evicted = r.u64() else { return nil }
        var a = AppState(key: AppKey(endpoint: endpoint, host: host), proxy: proxy, server: server, firstSeen: first,
                         lastSeen: last)
        a.events = Int(events)
        a.linksEvicted = Int(evicted)
        guard let names = r.strings(), let alpn = r.strings(), let transports = r.strings() else { return nil }
        (a.serverNames, a.alpn, a.transports) = (names, alpn, transports)
        guard let links = r.u32() else { return nil }
        a.links.reserveCapacity(min(Int(links), r.remaining / 40))
        for _ in 0..<links {
            guard let url = r.string32(), let method = r.string32(), let status = r.optionalInt(), let hits = r.u64(),
                  let first = r.u64(), let last = r.u64(), let cacheable = r.u8(), cacheable <= 2
            else { return nil }
            var l = LinkState(url: url, method: method, status: status, hits: Int(hits), firstSeen: first,
                              lastSeen: last, cacheable: cacheable == 0 ? nil : cacheable == 2)
            guard let cacheControl = r.optionalString(), let expires = r.optionalString(), let etag = r.optionalString(),
                  let lastModified = r.optionalString(), let vary = r.optionalString(),
                  let contentType = r.optionalString(), let length = r.optionalInt() else { return nil }
            (l.cacheControl, l.expires, l.etag, l.lastModified, l.vary, l.contentType, l.contentLength) =
                (cacheControl, expires, etag, lastModified, vary, contentType, length)
            a.links[url] = l
        }
        return a
    }
}

/// Checkpoints a state store each time the journal closes a segment, on a thread of its own: the journal thread
/// only takes a copy-on-write snapshot of the store (a few hundred milliseconds of encoding and writing for a store
/// of 175,000 links would otherwise stall it, and the queue behind it). One checkpoint at a time: a segment that
/// closes while one is being written is covered by the next; `finish` writes the last.
public final class StoreCheckpointer: @unchecked Sendable {
    public let store: StateStore
    public let directory: String
    private let log: @Sendable (String) -> Void
    private let running = Atomic<Bool>(false)
    // Journal thread only (and `finish`, after the journal thread has ended).
    private var thread: PosixThread?
    private var lastClosed: UInt64 = 0
    /// The newest segment a finished checkpoint covers; checkpoints written; the last one's size and duration.
    private let done = Mutex<(segment: UInt64, count: Int, bytes: Int, nanoseconds: UInt64)>((0, 0, 0, 0))

    public init(store: StateStore, directory: String, log: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.directory = directory
        self.log = log
    }

    /// Checkpoints written, and the last one's segment, size and duration.
    public var written: (count: Int, segment: UInt64, bytes: Int, milliseconds: Double) {
        done.withLock { ($0.count, $0.segment, $0.bytes, Double($0.nanoseconds) / 1e6) }
    }

    /// The journal thread closed segment `n` (`JournalWriter`'s `segmentClosed`).
    public func segmentClosed(_ n: UInt64) {
        lastClosed = n
        guard !running.load(ordering: .acquiring) else { return }
        thread?.join()
        running.store(true, ordering: .releasing)
        let state = store.state.withLock { $0 }
        thread = PosixThread(name: "statetap-ckpt", cpu: nil) { [self] in
            write(state, segment: n)
            running.store(false, ordering: .releasing)
        }
    }

    /// After the journal writer has finished: waits for the checkpoint being written, then writes one of the last
    /// closed segment if it is not covered yet.
    public func finish() {
        thread?.join()
        thread = nil
        if lastClosed > done.withLock({ $0.segment }) {
            write(store.state.withLock { $0 }, segment: lastClosed)
        }
    }

    private func write(_ state: StateStore.State, segment: UInt64) {
        let started = monotonicNanoseconds()
        do throws(JournalError) {
            let bytes = try StoreCheckpoint.write(state, limits: store.limits, segment: segment, directory: directory)
            let took = monotonicNanoseconds() &- started
            done.withLock { $0 = (segment, $0.count + 1, bytes, took) }
        } catch {
            log("journal: the state store checkpoint was not written: \(error.message) (the next start reads more "
                + "of the journal)")
        }
    }
}

extension StoreLimits: CustomStringConvertible {
    public var description: String {
        "max devices \(maxDevices), apps per device \(maxAppsPerDevice), links per app \(maxLinksPerApp)"
    }

    fileprivate init?(_ r: inout ByteReader) {
        guard let d = r.u64(), let a = r.u64(), let l = r.u64(), d <= Int.max, a <= Int.max, l <= Int.max else {
            return nil
        }
        self.init()
        (maxDevices, maxAppsPerDevice, maxLinksPerApp) = (Int(d), Int(a), Int(l))
    }
}

extension ByteWriter {
    /// u32 length, then the UTF-8.
    fileprivate mutating func string32(_ s: String) {
        withUTF8(s) { b in
            u32(UInt32(b.count))
            raw(b)
        }
    }

    /// u32 count, then each string.
    fileprivate mutating func strings(_ list: [String]) {
        u32(UInt32(list.count))
        for s in list { string32(s) }
    }

    fileprivate mutating func optionalString(_ s: String?) {
        u8(s == nil ? 0 : 1)
        if let s { string32(s) }
    }

    fileprivate mutating func optionalInt(_ v: Int?) {
        u8(v == nil ? 0 : 1)
        if let v { u64(UInt64(bitPattern: Int64(v))) }
    }
}

extension ByteReader {
    fileprivate mutating func string32() -> String? {
        guard let n = u32() else { return nil }
        return text(Int(n))
    }

    fileprivate mutating func strings() -> [String]? {
        guard let n = u32(), Int(n) <= remaining / 4 else { return nil }
        var list: [String] = []
        list.reserveCapacity(Int(n))
        for _ in 0..<n {
            guard let s = string32() else { return nil }
            list.append(s)
        }
        return list
    }

    /// `.some(nil)` for an absent value, nil when cut short.
    fileprivate mutating func optionalString() -> String?? {
        switch u8() {
        case 0: return .some(nil)
        case 1: return string32().map { .some($0) }
        default: return nil
        }
    }

    fileprivate mutating func optionalInt() -> Int?? {
        switch u8() {
        case 0: return .some(nil)
        case 1: return u64().map { .some(Int(Int64(bitPattern: $0))) }
        default: return nil
        }
    }
}
