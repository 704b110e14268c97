import Decode
import Extract

/// An application-state event, sent from a worker to the sink on an SPSC ring. Self-contained: it copies the few
/// bytes it keeps (../shared/EVENTS.md is the output format).
public struct StateEvent: Sendable, Equatable {
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
    // server_name
    public var transport: String = ""
    public var serverName: String?
    public var alpn: [String] = []
    public var tlsVersions: [UInt16] = []
    public var quicVersion: UInt32?
    public var dcid: [UInt8] = []
    public var encryptedClientHello = false
    // web_link
    public var method: String?
    public var url: String?
    public var host: String?
    public var httpVersion: String?
    public var status: Int?
    /// Lower-cased response header names of interest -> value.
    public var responseHeaders: [String: String] = [:]
    public var cacheable: Bool?
    /// The edge proxy that served the response (Via / X-Cache / Server), an addition to EVENTS.md's fields.
    public var proxy: String?

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
}

/// A JSON string literal, as events write them (also used by the CLI's summary).
public func jsonQuoted(_ s: String) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(s.utf8.count + 2)
    out.appendJSONString(s)
    return String(decoding: out, as: UTF8.self)
}
