// Fuzzes what the control plane does with a request body before anything changes: the duplicate-key scan, the
// JSON decoding of every body type the API takes (statetap's own coder, and the plain one of the MEC
// notifications), and the readers that validate what was decoded: RFC 3339 deadlines, device and associateId
// addresses, MEC enumerations, agent URLs, edge and cell names, the edges file's problems, and the quoting of
// echoed values.
//
// Input: [body type][body...]. Checks, besides AddressSanitizer: a deadline that parses reads back the same
// (formatted and parsed again, to the millisecond); a quoted value is bounded whatever was sent; an address that
// parses prints as text that parses to the same address.
import Decode
import Foundation
import FuzzSupport
import MigrationAPI

@_cdecl("LLVMFuzzerInitialize")
public func apiFuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    FuzzerOptions.handle(seeds: apiSeeds, dictionary: apiDictionary)
    return 0
}

/// The decoder of the MEC routes: field names as ETSI writes them.
let mecDecoder = JSONDecoder()

@_cdecl("LLVMFuzzerTestOneInput")
public func apiFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let kind = input.u8() % 6
    let body = input.rest()
    _ = JSONDuplicateKeys.first(in: body)
    let json = Data(body)
    switch kind {
    case 0:
        guard let r = try? JSONCoding.decoder.decode(MigrationRequest.self, from: json) else { break }
        address(r.device)
        boundedQuote(r.device); boundedQuote(r.to); if let f = r.from { boundedQuote(f) }
        if let d = r.deadline { deadline(d) }
    case 1:
        guard let n = try? mecDecoder.decode(CellChangeNotification.self, from: json) else { break }
        _ = n.hoStatus.number(names: ["", "IN_PREPARATION", "IN_EXECUTION", "COMPLETED", "REJECTED", "CANCELLED"])
        for id in n.associateId ?? [] { associate(id) }
        for e in (n.trgEcgi ?? []) + (n.srcEcgi.map { [$0] } ?? []) {
            _ = EdgeConfiguration.nameProblem(e.cellId, cell: true)
            boundedQuote(e.cellId)
        }
    case 2:
        guard let n = try? mecDecoder.decode(MobilityProcedureNotification.self, from: json) else { break }
        _ = n.mobilityStatus.number(names: ["", "INTERHOST_MOVEOUT_TRIGGERED", "INTERHOST_MOVEOUT_COMPLETED",
                                            "INTERHOST_MOVEOUT_FAILED"])
        for id in n.associateId ?? [] { associate(id) }
        for a in n.targetAppInfo?.commInterface?.ipAddresses ?? [] { address(a.host) }
        if let app = n.targetAppInfo?.appInstanceId { _ = EdgeConfiguration.nameProblem(app) }
    case 3:
        guard let c = try? JSONCoding.decoder.decode(EdgeConfiguration.self, from: json) else { break }
        // Bounded like the routes and the edges file are (a body is 1 MB at most).
        guard c.edges.count <= 4 * EdgeConfiguration.maxEdges, c.cells.count <= 4 * EdgeConfiguration.maxCells else { break }
        for p in c.problems() { check(p.utf8.count < 1000, "a problem message of \(p.utf8.count) bytes") }
    case 4:
        // A single value as the path parameters and the edge PUT body give them.
        let text = String(decoding: body, as: UTF8.self)
        _ = URLParts(text).agentProblem
        // --agent-networks entries, and a URL checked against what they allow.
        var policy = AgentPolicy()
        for cidr in text.split(separator: ",").prefix(8) {
            if let p = policy.allow(network: String(cidr)) { check(p.utf8.count < 1000, "a network problem of \(p.utf8.count) bytes") }
        }
        _ = policy.problem(url: URLParts(text))
        _ = EdgeConfiguration.nameProblem(text)
        _ = EdgeConfiguration.nameProblem(text, cell: true)
        address(text)
        deadline(text)
        boundedQuote(text)
    default:
        if let e = try? JSONCoding.decoder.decode(EdgeNode.self, from: json) {
            _ = URLParts(e.agent).agentProblem
            _ = EdgeConfiguration.nameProblem(e.name)
        }
    }
    return 0
}

func check(_ ok: Bool, _ what: @autoclosure () -> String) {
    if !ok { fatalError(what()) }
}

/// A deadline that parses must read back as the same instant once formatted (milliseconds: the format's).
func deadline(_ text: String) {
    guard let date = parseRFC3339(text) else { return }
    let t = date.timeIntervalSince1970
    check(t.isFinite, "\(text) read as \(t)")
    guard t >= -62_167_219_200, t < 253_402_300_800 else { return }  // years 0000...9999: what the format holds
    guard let again = parseRFC3339(rfc3339(date)) else { fatalError("\(rfc3339(date)) (from \(text)) does not parse") }
    check(abs(again.timeIntervalSince1970 - t) < 0.0011, "\(text) -> \(rfc3339(date)) -> \(again.timeIntervalSince1970)")
}

/// An address that parses prints as text that parses to the same address.
func address(_ text: String) {
    guard let a = IPAddress(text) else { return }
    check(IPAddress(a.description) == a, "\(text) printed as \(a.description), which reads differently")
}

func associate(_ id: AssociateId) {
    _ = id.type.number(names: ["", "UE_IPv4_ADDRESS", "UE_IPV6_ADDRESS"])
    address(id.value)
    boundedQuote(id.value)
}

/// Whatever was sent, an echoed value is at most 80 characters (each escaped to at most 10) and its length.
func boundedQuote(_ text: String) {
    let q = quoted(text)
    check(q.unicodeScalars.count <= 80 * 10 + 40, "quoted \(text.utf8.count) bytes as \(q.unicodeScalars.count) characters")
}
