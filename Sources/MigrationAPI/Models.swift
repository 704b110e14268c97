// The control plane's request and status types (JSON bodies of the API, MEC notifications, the edges file) and
// the strict readers behind their validation (RFC 3339 times, agent URLs, names). Foundation and Decode only, so
// the API fuzzer (Fuzz/) builds it without the server stack.
import Decode
import Foundation

// The JSON shapes of the control plane's and the agent's APIs (docs/openapi.yaml describes the same). statetap's
// own API is snake_case (`JSONCoding.encoder`); the ETSI MEC notifications keep the spec's camelCase.

/// One edge node: its name and the base URL of its statetap agent.
public struct EdgeNode: Codable, Sendable, Equatable {
    public var name: String
    public var agent: String

    public init(name: String, agent: String) {
        self.name = name
        self.agent = agent
    }
}

/// The edges file (`--edges`): edge nodes, which cell belongs to which edge, and the planner's policy rules.
public struct EdgeConfiguration: Codable, Sendable, Equatable {
    public var edges: [EdgeNode]
    public var cells: [String: String]
    public var policies: [PolicyRule]?

    public init(edges: [EdgeNode] = [], cells: [String: String] = [:], policies: [PolicyRule]? = nil) {
        self.edges = edges
        self.cells = cells
        self.policies = policies
    }

    /// Edges and cells at most, and the longest name of either.
    public static let maxEdges = 1024
    public static let maxCells = 65536
    public static let maxNameLength = 64

    /// Why `name` cannot name an edge (or, `cell` true, a cell): nil when it can.
    public static func nameProblem(_ name: String, cell: Bool = false) -> String? {
        let allowed = name.utf8.allSatisfy { c in
            (c >= 48 && c <= 57) || (c | 0x20 >= 97 && c | 0x20 <= 122) || c == 46 || c == 95 || c == 45 || (cell && c == 58)
        }
        guard !name.isEmpty, name.utf8.count <= maxNameLength, allowed else {
            return "\(cell ? "cell id" : "edge name") \(quoted(name)) must be 1 to \(maxNameLength) letters, digits, '.', '_'\(cell ? ", ':'" : "") or '-'"
        }
        return nil
    }

    /// Every problem with the file, in words (empty when it is usable); agents as `agents` allows them (hosts
    /// given by name are not resolved here).
    public func problems(agents: AgentPolicy = AgentPolicy()) -> [String] {
        var out: [String] = []
        var seen = Set<String>()
        if edges.count > Self.maxEdges { out.append("\(edges.count) edges: at most \(Self.maxEdges)") }
        if cells.count > Self.maxCells { out.append("\(cells.count) cells: at most \(Self.maxCells)") }
        for e in edges {
            if let p = Self.nameProblem(e.name) { out.append(p) }
            if !seen.insert(e.name).inserted { out.append("edge \(quoted(e.name)) is listed twice") }
            if let p = agents.problem(url: URLParts(e.agent)) { out.append("edge \(quoted(e.name)): agent \(p)") }
        }
        for cell in cells.keys.sorted() { if let p = Self.nameProblem(cell, cell: true) { out.append(p) } }
        for (cell, edge) in cells.sorted(by: { $0.key < $1.key }) where !seen.contains(edge) {
            out.append("cell \(quoted(cell)) maps to edge \(quoted(edge)), which is not in edges")
        }
        for (i, rule) in (policies ?? []).enumerated() where rule.host == nil && rule.endpoint == nil {
            out.append("policy rule \(i + 1) matches nothing: give host and/or endpoint")
        }
        return out
    }
}

/// How an application's state is rebuilt at the destination edge.
public enum ReconstructionMethod: String, Codable, Sendable, CaseIterable {
    /// The cacheable links, most valuable first, fetched through the destination's cache.
    case prefetchLinks = "prefetch-links"
    /// Links with validators, re-checked with conditional requests (the cache fills itself on a miss).
    case revalidate
    /// Only server names are known (TLS, QUIC): resolve and pre-connect.
    case hostsOnly = "hosts-only"
    /// The whole application record goes to the destination's storage.
    case stateTransfer = "state-transfer"
    /// Nothing to rebuild (no cacheable link, no server name), or excluded by a rule.
    case skip
}

/// A row of the policy table: the first rule whose host pattern (`*` wildcards) and endpoint match decides.
public struct PolicyRule: Codable, Sendable, Equatable {
    public var host: String?
    public var endpoint: String?
    public var method: ReconstructionMethod

    public init(host: String? = nil, endpoint: String? = nil, method: ReconstructionMethod) {
        self.host = host
        self.endpoint = endpoint
        self.method = method
    }
}

/// `POST /v1/migrations`.
public struct MigrationRequest: Codable, Sendable {
    public var device: String
    public var from: String?
    public var to: String
    /// RFC 3339 time; absent: now + the control plane's default deadline.
    public var deadline: String?

    public init(device: String, from: String? = nil, to: String, deadline: String? = nil) {
        self.device = device
        self.from = from
        self.to = to
        self.deadline = deadline
    }
}

/// ETSI GS MEC 012 (RNIS) `CellChangeNotification`, the fields statetap reads. `hoStatus` is an integer in MEC
/// 012 v2 (1 IN_PREPARATION, 2 IN_EXECUTION, 3 COMPLETED, 4 REJECTED, 5 CANCELLED) and a string in v1; both
/// are accepted.
public struct CellChangeNotification: Codable, Sendable {
    public struct Plmn: Codable, Sendable {
        public var mcc: String?
        public var mnc: String?
    }

    public struct Ecgi: Codable, Sendable {
        public var plmn: Plmn?
        public var cellId: String
    }

    public var notificationType: String?
    public var hoStatus: FlexibleEnum
    public var associateId: [AssociateId]?
    public var srcEcgi: Ecgi?
    public var trgEcgi: [Ecgi]?
}

/// ETSI GS MEC 021 (Application Mobility Service) `MobilityProcedureNotification`: `mobilityStatus` 1
/// INTERHOST_MOVEOUT_TRIGGERED starts a migration, 2 INTERHOST_MOVEOUT_COMPLETED finishes it, 3
/// INTERHOST_MOVEOUT_FAILED cancels it. The target edge is `targetAppInfo.appInstanceId` when it names an edge,
/// else the edge whose agent's host is one of `targetAppInfo.commInterface.ipAddresses`.
public struct MobilityProcedureNotification: Codable, Sendable {
    public struct Address: Codable, Sendable {
        public var host: String
        public var port: Int?
    }

    public struct CommInterface: Codable, Sendable {
        public var ipAddresses: [Address]?
    }

    public struct TargetAppInfo: Codable, Sendable {
        public var appInstanceId: String?
        public var commInterface: CommInterface?
    }

    public var notificationType: String?
    public var associateId: [AssociateId]?
    public var mobilityStatus: FlexibleEnum
    public var targetAppInfo: TargetAppInfo?
}

/// MEC `AssociateId`: `type` 1 (UE_IPv4_ADDRESS) or 2 (UE_IPV6_ADDRESS), as an integer or its name.
public struct AssociateId: Codable, Sendable {
    public var type: FlexibleEnum
    public var value: String
}

/// A MEC enumeration sent as its number or as its name.
public enum FlexibleEnum: Codable, Sendable, Equatable {
    case number(Int)
    case name(String)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(Int.self) { self = .number(n); return }
        self = .name(try c.decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .number(let n): try c.encode(n)
        case .name(let s): try c.encode(s)
        }
    }

    /// The value as its number, names looked up in `names` (index = number), case-insensitive.
    public func number(names: [String]) -> Int? {
        switch self {
        case .number(let n): return n
        case .name(let s):
            let u = s.uppercased()
            return names.firstIndex { $0.uppercased() == u }
        }
    }
}

/// The coders of statetap's own API.
public enum JSONCoding {
    public static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    public static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }()
}

/// `scheme://authority/path?query` taken apart without Foundation's URL quirks (what the capture saw is kept as
/// it was).
public struct URLParts {
    public var scheme = ""
    public var host = ""
    public var port: Int?
    public var path = "/"
    public var problem: String?

    public init(_ text: String) {
        guard let sep = text.range(of: "://") else {
            problem = "\(quoted(text)) is not an absolute URL (scheme://host[:port][/path])"
            return
        }
        scheme = text[..<sep.lowerBound].lowercased()
        let rest = text[sep.upperBound...]
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        path = slash < rest.endIndex ? String(rest[slash...]) : "/"
        if let q = path.firstIndex(of: "#") { path = String(path[..<q]) }
        guard scheme == "http" || scheme == "https" else {
            problem = "\(quoted(text)) is not an http or https URL"
            return
        }
        var hostPart = Substring(authority)
        if hostPart.hasPrefix("["), let close = hostPart.firstIndex(of: "]") {
            host = String(hostPart[hostPart.index(after: hostPart.startIndex)..<close])
            hostPart = hostPart[hostPart.index(after: close)...]
            if hostPart.hasPrefix(":") { port = Int(hostPart.dropFirst()) }
        } else if let colon = hostPart.lastIndex(of: ":") {
            host = String(hostPart[..<colon])
            port = Int(hostPart[hostPart.index(after: colon)...])
            if port == nil { problem = "\(quoted(text)) has a bad port" }
        } else {
            host = String(hostPart)
        }
        if host.isEmpty { problem = "\(quoted(text)) has no host" }
    }

    /// Why this URL may not be an agent's under the default `AgentPolicy`; nil when it may (or when its host is a
    /// name: see `AgentPolicy.problem(url:)`).
    public var agentProblem: String? { AgentPolicy().problem(url: self) }

    /// host[:port] as a Host header value.
    public var authority: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return port.map { "\(h):\($0)" } ?? h
    }
}

/// Which agents the control plane sends plans to; an agent receives the API token, so this is the operator's
/// choice (`--agent-schemes`, `--agent-networks`): the URL schemes allowed (default http and https) and, when
/// networks are given, the address prefixes an agent's address must be in. Whatever the networks, link-local
/// (169.254.0.0/16, fe80::/10: cloud metadata services live there), unspecified and multicast addresses are refused.
/// A host given by name is resolved when its edge is configured, and every address it resolves to must pass
/// (`problem(address:host:)`); it is not checked again when the name later resolves elsewhere.
public struct AgentPolicy: Sendable {
    public var schemes: Set<String> = ["http", "https"]
    public private(set) var networks: [IPPrefix] = []

    public init() {}

    /// Adds `ADDRESS/LENGTH` (a bare address: that host) to the allowed networks; the reason when it is not one.
    public mutating func allow(network text: String) -> String? {
        do throws(IPPrefix.ParseError) {
            networks.append(try IPPrefix(parsing: text))
            return nil
        } catch {
            switch error {
            case .notAnAddress: return "\(quoted(text)) is not ADDRESS/LENGTH (e.g. 10.20.0.0/16)"
            case .badLength(let maximum): return "\(quoted(text)): the prefix length must be 0...\(maximum)"
            }
        }
    }

    /// Why `address` (of `host`) may not be an agent's; nil when it may.
    public func problem(address ip: IPAddress, host: String) -> String? {
        let b = ip.bytes
        let refused: Bool
        if ip.isIPv6 {
            refused = b.allSatisfy { $0 == 0 } || b[0] == 0xff || (b[0] == 0xfe && b[1] & 0xc0 == 0x80)
                || (b[0..<10].allSatisfy { $0 == 0 } && b[10] == 0xff && b[11] == 0xff && (b[12] == 169 && b[13] == 254 || b[12] >= 224))
        } else {
            refused = b.allSatisfy { $0 == 0 } || (b[0] == 169 && b[1] == 254) || b[0] >= 224
        }
        let shown = host == ip.description ? quoted(host) : "\(quoted(host)) (\(ip))"
        if refused { return "\(shown) is a link-local, unspecified, multicast or broadcast address: not an agent's" }
        if !networks.isEmpty && !networks.contains(where: { $0.contains(ip) }) {
            return "\(shown) is outside the agent networks (\(networks.map(\.description).joined(separator: ", ")))"
        }
        return nil
    }

    /// Why this URL may not be an agent's; nil when it may. A host given by name passes here: resolve it and check
    /// each address with `problem(address:host:)`.
    public func problem(url: URLParts) -> String? {
        if let problem = url.problem { return problem }
        guard schemes.contains(url.scheme) else {
            return "\(quoted(url.scheme + "://")) is not an allowed agent scheme (\(schemes.sorted().joined(separator: ", ")))"
        }
        guard let ip = IPAddress(url.host) else {
            // An IPv6 literal statetap does not read (an embedded dotted quad such as ::ffff:169.254.169.254) is
            // refused rather than let through unchecked.
            return url.host.contains(":") ? "\(quoted(url.host)) is an IPv6 form statetap does not read: write it in hex groups" : nil
        }
        return problem(address: ip, host: url.host)
    }
}

/// `date` as RFC 3339 in UTC to the millisecond (`2026-11-25T10:00:00.000Z`), truncated (never later than the
/// instant), in the proleptic Gregorian calendar: what `parseRFC3339` reads back. (Foundation's ISO8601DateFormatter
/// writes dates before 1582 in the Julian calendar, which the parser would read as other instants: the API fuzzer
/// found it.)
public func rfc3339(_ date: Date) -> String {
    let t = date.timeIntervalSince1970
    guard t.isFinite, abs(t) < 1e14 else { return "invalid" }
    let ms = Int((t * 1000).rounded(.down))
    let (secondsTotal, millis) = ms.quotientAndRemainder(dividingBy: 1000)
    var seconds = secondsTotal, milli = millis
    if milli < 0 { milli += 1000; seconds -= 1 }
    var days = seconds / 86_400, secondOfDay = seconds % 86_400
    if secondOfDay < 0 { secondOfDay += 86_400; days -= 1 }
    // H. Hinnant's civil_from_days.
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    func pad(_ v: Int, _ width: Int) -> String {
        let d = String(v)
        return d.count >= width ? d : String(repeating: "0", count: width - d.count) + d
    }
    return pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + "T" + pad(secondOfDay / 3600, 2) + ":"
        + pad(secondOfDay / 60 % 60, 2) + ":" + pad(secondOfDay % 60, 2) + "." + pad(milli, 3) + "Z"
}

/// Parses an RFC 3339 date-time (§5.6): `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, `T` and `Z` in either case.
/// Strict and bounded: every field is range-checked (the day against its month, leap years included), the
/// fraction may be any length (only its first 9 digits, nanoseconds, are kept: `.9999999999` is 0.999999999 s, not
/// a number read whole), a leap second (:60) is read as the last instant of its minute, and nothing can overflow.
/// Nil for anything else. (Foundation's ISO8601DateFormatter trapped on a 40-digit fraction and misread fractions
/// of more than 9 digits.)
public func parseRFC3339(_ text: String) -> Date? {
    let b = Array(text.utf8)
    guard b.count >= 20, b.count <= 256 else { return nil }  // "2026-01-01T00:00:00Z" at least; 256 bytes at most
    var i = 0
    func digits(_ n: Int) -> Int? {
        guard i + n <= b.count else { return nil }
        var v = 0
        for k in i..<i + n {
            guard b[k] >= 48, b[k] <= 57 else { return nil }
            v = v * 10 + Int(b[k] - 48)
        }
        i += n
        return v
    }
    func expect(_ c: UInt8, orLower: Bool = false) -> Bool {
        guard i < b.count, b[i] == c || (orLower && b[i] == c | 0x20) else { return false }
        i += 1
        return true
    }
    guard let year = digits(4), expect(UInt8(ascii: "-")), let month = digits(2), expect(UInt8(ascii: "-")),
          let day = digits(2), expect(UInt8(ascii: "T"), orLower: true),
          let hour = digits(2), expect(UInt8(ascii: ":")), let minute = digits(2), expect(UInt8(ascii: ":")),
          let second = digits(2)
    else { return nil }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    guard (1...12).contains(month), day >= 1, day <= monthDays[month - 1], hour <= 23, minute <= 59, second <= 60
    else { return nil }
    var nanoseconds = 0
    if i < b.count, b[i] == UInt8(ascii: ".") {
        i += 1
        let start = i
        while i < b.count, b[i] >= 48, b[i] <= 57 {
            if i - start < 9 { nanoseconds = nanoseconds * 10 + Int(b[i] - 48) }
            i += 1
        }
        guard i > start else { return nil }  // a dot needs at least one digit
        for _ in min(i - start, 9)..<9 { nanoseconds *= 10 }
    }
    var offsetSeconds = 0
    if expect(UInt8(ascii: "Z"), orLower: true) {
        offsetSeconds = 0
    } else if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
        let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
        i += 1
        guard let oh = digits(2), expect(UInt8(ascii: ":")), let om = digits(2), oh <= 23, om <= 59 else { return nil }
        offsetSeconds = sign * (oh * 3600 + om * 60)
    } else {
        return nil
    }
    guard i == b.count else { return nil }
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    let days = era * 146_097 + doe - 719_468
    // A leap second: the last representable instant of its minute (the next minute starts one second later).
    let wholeSeconds = days * 86_400 + hour * 3600 + minute * 60 + min(second, 59) - offsetSeconds
    let fraction = second == 60 ? 0.999_999_999 : Double(nanoseconds) / 1e9
    return Date(timeIntervalSince1970: Double(wholeSeconds) + fraction)
}
