import Decode
import Extract

/// A migration step, journaled by the control plane (the next issue fills these in).
public struct MigrationMark: Sendable, Equatable {
    public var id: String
    public var device: IPAddress
    public var from: String
    public var to: String
    /// planned, transferring, prefetching, ready, failed, cancelled…
    public var status: String
    public var timestampNanoseconds: UInt64
    public var detail: String?

    public init(id: String, device: IPAddress, from: String, to: String, status: String,
                timestampNanoseconds: UInt64, detail: String? = nil)
    {
        self.id = id; self.device = device; self.from = from; self.to = to; self.status = status
        self.timestampNanoseconds = timestampNanoseconds; self.detail = detail
    }
}

/// A migration plan, journaled as the control plane made it: its body is the plan's own JSON.
public struct PlanMark: Sendable, Equatable {
    public var migrationID: String
    public var device: IPAddress
    public var timestampNanoseconds: UInt64
    public var body: [UInt8]

    public init(migrationID: String, device: IPAddress, timestampNanoseconds: UInt64, body: [UInt8]) {
        self.migrationID = migrationID; self.device = device; self.timestampNanoseconds = timestampNanoseconds
        self.body = body
    }
}

/// One journal record: binary, length-prefixed, versioned, one type per event kind plus the migration markers.
///
///     record := u32 body length | u8 type | u8 version | body          (little endian)
///     event  := u64 ts | addr device | addr client | u16 port | addr server | u16 port
///               | u8 n | n × u16 vlan | u8 has teid | u32 teid | fields
///     fields := (u8 tag | u16 length | bytes)*      unknown tags are skipped: old readers read new records
///     addr   := u8 family (4 | 6) | 4 or 16 bytes
public enum JournalRecord: Sendable, Equatable {
    case event(StateEvent)
    case migration(MigrationMark)
    case plan(PlanMark)

    public enum RecordType: UInt8, Sendable, CaseIterable {
        case webLink = 1, serverName = 2, migration = 3, plan = 4
    }

    static let version: UInt8 = 1
    /// Record header bytes (length, type, version).
    static let headerSize = 6

    public var device: IPAddress {
        switch self {
        case .event(let e): e.device
        case .migration(let m): m.device
        case .plan(let p): p.device
        }
    }

    public var timestampNanoseconds: UInt64 {
        switch self {
        case .event(let e): e.timestampNanoseconds
        case .migration(let m): m.timestampNanoseconds
        case .plan(let p): p.timestampNanoseconds
        }
    }

    /// Field tags of the markers (events' tags are `StateEvent.Field`, 1–23).
    private enum Tag: UInt8 {
        case id = 32, from, to, status2, detail, body
    }

    /// Appends the record to `w`; returns its device and timestamp. Consuming: the record is moved in, not copied
    /// (a copy would retain its buffers here and release them again). An event's fields are copied as they lie.
    /// The journal thread takes the device and timestamp from here for the same reason: `device` and
    /// `timestampNanoseconds` copy the whole payload out of the enum (perf: an outlined copy, ~4% of that thread).
    @discardableResult
    consuming func encode(into w: inout ByteWriter) -> (device: IPAddress, timestamp: UInt64) {
        let start = w.count
        w.u32(0)  // patched below
        let key: (device: IPAddress, timestamp: UInt64)
        switch consume self {
        case .event(let e):
            key = (e.device, e.timestampNanoseconds)
            w.u8(e.kind == .webLink ? RecordType.webLink.rawValue : RecordType.serverName.rawValue)
            w.u8(Self.version)
            w.u64(e.timestampNanoseconds)
            w.address(e.device)
            w.address(e.client); w.u16(e.clientPort)
            w.address(e.server); w.u16(e.serverPort)
            let vlans = e.vlans.prefix(255)
            w.u8(UInt8(vlans.count))
            for v in vlans { w.u16(v) }
            w.u8(e.teid == nil ? 0 : 1); w.u32(e.teid ?? 0)
            // The fields are already in the record's encoding (`StateEvent.fields`): copied as they are.
            e.fields.withUnsafeBytes { w.raw($0) }
        case .migration(let m):
            key = (m.device, m.timestampNanoseconds)
            w.u8(RecordType.migration.rawValue)
            w.u8(Self.version)
            w.u64(m.timestampNanoseconds)
            w.address(m.device)
            w.field(Tag.id.rawValue, m.id)
            w.field(Tag.from.rawValue, m.from)
            w.field(Tag.to.rawValue, m.to)
            w.field(Tag.status2.rawValue, m.status)
            if let d = m.detail { w.field(Tag.detail.rawValue, d) }
        case .plan(let p):
            key = (p.device, p.timestampNanoseconds)
            w.u8(RecordType.plan.rawValue)
            w.u8(Self.version)
            w.u64(p.timestampNanoseconds)
            w.address(p.device)
            w.field(Tag.id.rawValue, p.migrationID)
            // A plan may be larger than one field: it goes in 60 kB pieces, in order.
            var rest = p.body[...]
            repeat {
                let piece = rest.prefix(60_000)
                w.u8(Tag.body.rawValue); w.u16(UInt16(piece.count)); w.raw(piece)
                rest = rest.dropFirst(piece.count)
            } while !rest.isEmpty
        }
        w.patch32(UInt32(w.count - start - Self.headerSize), at: start)
        return key
    }

    /// Reads one record from `r`; nil when it is cut or malformed (the reader then skips `length` bytes).
    static func decode(type: UInt8, version: UInt8, body: UnsafeRawBufferPointer) -> JournalRecord? {
        guard version == 1, let type = RecordType(rawValue: type) else { return nil }
        var r = ByteReader(body)
        guard let ts = r.u64(), let device = r.address() else { return nil }
        switch type {
        case .webLink, .serverName:
            guard let client = r.address(), let cport = r.u16(), let server = r.address(), let sport = r.u16(),
                  let nv = r.u8() else { return nil }
            var vlans: [UInt16] = []
            for _ in 0..<nv { guard let v = r.u16() else { return nil }; vlans.append(v) }
            guard let hasTEID = r.u8(), let teid = r.u32() else { return nil }
            // The fields stay encoded: the event keeps them as one buffer (nil when one is cut).
            guard let e = StateEvent(kind: type == .webLink ? .webLink : .serverName, timestampNanoseconds: ts,
                                     device: device, client: client, clientPort: cport, server: server,
                                     serverPort: sport, vlans: vlans, teid: hasTEID != 0 ? teid : nil,
                                     fields: r.view(r.remaining)!) else { return nil }
            return .event(e)
        case .migration:
            var m = MigrationMark(id: "", device: device, from: "", to: "", status: "", timestampNanoseconds: ts)
            while r.remaining > 0 {
                guard let t = r.u8(), let n = r.u16(), let v = r.raw(Int(n)) else { return nil }
                let s = String(decoding: v, as: UTF8.self)
                switch Tag(rawValue: t) {
                case .id: m.id = s
                case .from: m.from = s
                case .to: m.to = s
                case .status2: m.status = s
                case .detail: m.detail = s
                default: break
                }
            }
            return .migration(m)
        case .plan:
            var p = PlanMark(migrationID: "", device: device, timestampNanoseconds: ts, body: [])
            while r.remaining > 0 {
                guard let t = r.u8(), let n = r.u16(), let v = r.raw(Int(n)) else { return nil }
                switch Tag(rawValue: t) {
                case .id: p.migrationID = String(decoding: v, as: UTF8.self)
                case .body: p.body += v
                default: break
                }
            }
            return .plan(p)
        }
    }
}
