import Decode

/// An application-state event, sent from a worker to the sink on an SPSC ring. Self-contained: it copies the few
/// bytes it keeps (../shared/EVENTS.md is the output format).
///
/// Flat: the context (kind, time, addresses, ports, TEID) is plain values, and every field of the kind (URL, host,
/// headers, server name, ALPNs…) lives in one byte buffer, `fields`, encoded as the journal writes it. An event is
/// built once on its worker; the sink's JSON writer reads the bytes where they lie, the journal copies them into its
/// batch as they are, and an event crossing a ring retains and releases one buffer, not a string per field (with a
/// string per field, the journal thread spent most of its time taking events apart). The properties below read and
/// write the buffer.
public struct StateEvent: Sendable {
    public enum Kind: String, Sendable { case webLink = "web_link", serverName = "server_name" }
    public var kind: Kind
    /// Capture time of the packet that completed the event, nanoseconds since the epoch.
    public var timestampNanoseconds: UInt64
    public var device: IPAddress
    public var client: IPAddress
    public var clientPort: UInt16
    public var server: IPAddress
    public var serverPort: UInt16
    /// VLAN ids, outermost first.
    public var vlans: [UInt16]
    public var teid: UInt32?
    /// The kind's fields: (u8 tag | u16 length, little endian | bytes)*, tags from `Field`; always whole (every
    /// length fits). A field set twice holds its last value; ALPNs, TLS versions and headers repeat, in order.
    public internal(set) var fields: [UInt8] = []

    /// Tags of `fields` (the journal's record format: stable numbers, never reused).
    public enum Field: UInt8, Sendable {
        // server_name
        case transport = 1, serverName, alpn, tlsVersion, quicVersion, dcid, encryptedClientHello
        // web_link, added later in the free tags under 16 (tags under 24 are indexed, see `FieldIndex`):
        // where the URL's host came from when not the request ("address"); the message was cut by the snap length.
        case hostFrom = 12, truncated
        // web_link
        case method = 16, url, host, httpVersion, status, cacheable, proxy
        /// One response header: u8 name length | lower-cased name | value.
        case header
    }

    /// An event with its context; the kind's fields are set afterwards.
    public init(kind: Kind, timestampNanoseconds: UInt64, device: IPAddress, client: IPAddress, clientPort: UInt16,
                server: IPAddress, serverPort: UInt16, vlans: [UInt16], teid: UInt32?)
    {
        self.kind = kind
        self.timestampNanoseconds = timestampNanoseconds
        self.device = device
        self.client = client
        self.clientPort = clientPort
        self.server = server
        self.serverPort = serverPort
        self.vlans = vlans
        self.teid = teid
    }

    /// An event with fields already encoded (the journal's reader); nil when `fields` is not whole.
    public init?(kind: Kind, timestampNanoseconds: UInt64, device: IPAddress, client: IPAddress, clientPort: UInt16,
                 server: IPAddress, serverPort: UInt16, vlans: [UInt16], teid: UInt32?,
                 fields: UnsafeRawBufferPointer)
    {
        guard Self.whole(fields) else { return nil }
        self.init(kind: kind, timestampNanoseconds: timestampNanoseconds, device: device, client: client,
                  clientPort: clientPort, server: server, serverPort: serverPort, vlans: vlans, teid: teid)
        self.fields = Array(fields)
    }

    /// One JSON object on one line (EVENTS.md): fields not known are omitted.
    public func jsonLine() -> String {
        var out: [UInt8] = []
        out.reserveCapacity(512)
        appendJSON(to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

extension StateEvent {
    /// A server_name event from a parsed ClientHello.
    static func serverName(_ info: ClientHelloInfo, transport: String, ts: UInt64, device: IPAddress,
                           client: IPAddress, clientPort: UInt16, server: IPAddress, serverPort: UInt16,
                           packet p: DecodedPacket) -> StateEvent
    {
        var e = StateEvent(kind: .serverName, timestampNanoseconds: ts, device: device, client: client,
                           clientPort: clientPort, server: server, serverPort: serverPort, vlans: vlanList(p),
                           teid: p.hasTEID ? p.teid : nil)
        e.fields.reserveCapacity(64 + (info.serverName?.utf8.count ?? 0))
        e.transport = transport
        e.serverName = info.serverName
        e.alpn = info.alpn
        e.tlsVersions = info.supportedVersions
        e.encryptedClientHello = info.encryptedClientHello
        return e
    }

    /// Response header -> EVENTS.md field, and whether the value is a number.
    static let responseFields: [(String, StaticString, Bool)] = [
        ("cache-control", "cache_control", false), ("expires", "expires", false), ("etag", "etag", false),
        ("last-modified", "last_modified", false), ("vary", "vary", false), ("content-type", "content_type", false),
        ("content-length", "content_length", true), ("age", "age", true), ("via", "via", false),
        ("x-cache", "x_cache", false), ("server", "server_software", false),
    ]
    /// `HeaderOrder`'s place of each of `responseFields`' headers.
    static let responseSlots: [Int] = responseFields.map { f in withUTF8(f.0) { HeaderOrder.slot(of: $0)! } }
}

/// A JSON string literal, as events write them (also used by the CLI's summary).
public func jsonQuoted(_ s: String) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(s.utf8.count + 2)
    out.appendJSONString(s)
    return String(decoding: out, as: UTF8.self)
}
