// Fuzzes HTTPStreamParser on both directions of a connection, as HTTPTracker drives it: the input is cut into
// segments of either direction at fuzzer-chosen points, with gaps of known or unknown size; requests feed the
// server side's pending methods (HEAD, CONNECT); a CONNECT turns the client side into a tunnel; the server side's
// loss of sync unpairs the waiting requests; request/response pairs go through the cache and proxy rules.
//
// Input: [options][segment count][segments...][stream]. Options: bit 0 the parsers start at the connection's
// start (a SYN was seen), bit 1 the last segment (the rest of the stream) is the server's. Each segment byte:
// bit 7 server (else client); bit 6 a gap (bits 0-5 its size, 0 unknown; an odd size is a snap-length cut) instead
// of bytes (bits 0-5 how many).
// Checks, besides AddressSanitizer: each direction without gaps gives the same messages fed in one piece as fed
// in its segments (a parser must not depend on where TCP cut the stream).
import Extract
import FuzzSupport

/// Writes the seeds (or dictionary) when asked, before libFuzzer starts: see FuzzerOptions.
@_cdecl("LLVMFuzzerInitialize")
public func httpFuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    FuzzerOptions.handle(seeds: httpSeeds, dictionary: httpDictionary)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func httpFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let options = input.u8()
    let fromStart = options & 1 != 0
    let descriptors = input.take(Int(input.u8() % 17))

    var connection = Connection(fromStart: fromStart)
    var pieces: [[[UInt8]]] = [[], []]  // per direction, for the one-piece comparison
    var gapSeen = [false, false]
    for d in descriptors {
        let direction = Int(d >> 7)
        let n = Int(d & 0x3f)
        if d & 0x40 != 0 {
            connection.gap(n == 0 ? nil : n, server: direction == 1)
            gapSeen[direction] = true
        } else {
            let segment = input.take(n)
            pieces[direction].append(segment)
            connection.segment(segment, server: direction == 1)
        }
    }
    let lastDirection = Int(options >> 1 & 1)
    let last = input.rest()
    pieces[lastDirection].append(last)
    connection.segment(last, server: lastDirection == 1)

    for direction in 0..<2 where !gapSeen[direction] {
        checkSplitIndependence(pieces[direction], server: direction == 1, fromStart: fromStart,
                               methods: connection.requestedMethods)
    }
    return 0
}

/// Both parsers of one connection and what HTTPTracker keeps between segments.
struct Connection {
    var client: HTTPStreamParser
    var server: HTTPStreamParser
    var pending: [HTTPRequest] = []
    /// Every request's method, in order (the one-piece comparison of the server side replays them).
    var requestedMethods: [String] = []
    var tunnel = false
    static let maxPending = 256

    init(fromStart: Bool) {
        client = HTTPStreamParser(side: .client, fromStart: fromStart)
        server = HTTPStreamParser(side: .server, fromStart: fromStart)
    }

    mutating func segment(_ bytes: [UInt8], server fromServer: Bool) {
        var messages: [HTTPStreamParser.Message] = []
        withExactCopy(of: bytes) { raw in
            if fromServer {
                server.feed(raw) { messages.append($0) }
            } else if !tunnel {
                client.feed(raw) { if case .lostSync = $0 {} else { messages.append($0) } }
            }
        }
        pair(messages)
    }

    /// A gap of `count` bytes (nil: unknown); an odd count is given as a snap-length cut instead (what was fed
    /// before it ends where the capture stopped keeping bytes), as HTTPTracker hands both on.
    mutating func gap(_ count: Int?, server fromServer: Bool) {
        var messages: [HTTPStreamParser.Message] = []
        let cut = count.map { $0 & 1 == 1 } ?? false
        if fromServer {
            if cut { server.cut(count!) { messages.append($0) } } else { server.gap(count) { messages.append($0) } }
        } else if cut {
            client.cut(count!) { if case .lostSync = $0 {} else { messages.append($0) } }
        } else {
            client.gap(count) { _ in }
        }
        pair(messages)
    }

    private mutating func pair(_ messages: [HTTPStreamParser.Message]) {
        for m in messages {
            switch m {
            case .request(let r):
                server.pendingMethods.append(r.method)
                requestedMethods.append(r.method)
                pending.append(r)
                if r.method == "CONNECT" { tunnel = true }
                _ = r.url
                if pending.count > Self.maxPending {
                    pending.removeFirst()
                    if server.pendingMethods.count > Self.maxPending { server.pendingMethods.removeFirst() }
                }
            case .response(let r):
                _ = EdgeProxy.identify(r)
                guard !pending.isEmpty else { continue }
                let request = pending.removeFirst()
                _ = Cacheability.isCacheable(method: request.method, response: r)
            case .lostSync:
                pending.removeAll()
                server.pendingMethods.removeAll()
            }
        }
    }
}

/// A message, comparable.
enum Parsed: Equatable {
    case request(HTTPRequest)
    case response(HTTPResponse)
    case lostSync

    init(_ m: HTTPStreamParser.Message) {
        switch m {
        case .request(let r): self = .request(r)
        case .response(let r): self = .response(r)
        case .lostSync: self = .lostSync
        }
    }
}

/// The messages and malformed count of one direction fed as `pieces`, then fed as one piece, must be the same.
func checkSplitIndependence(_ pieces: [[UInt8]], server: Bool, fromStart: Bool, methods: [String]) {
    guard pieces.count > 1 else { return }
    func parse(_ segments: [[UInt8]]) -> (messages: [Parsed], malformed: Int) {
        var parser = HTTPStreamParser(side: server ? .server : .client, fromStart: fromStart)
        parser.pendingMethods = methods
        var out: [Parsed] = []
        for s in segments { withExactCopy(of: s) { parser.feed($0) { out.append(Parsed($0)) } } }
        return (out, parser.malformed)
    }
    let split = parse(pieces)
    let whole = parse([Array(pieces.joined())])
    check(split.messages == whole.messages, "\(server ? "server" : "client") messages depend on the "
          + "segmentation:\nin \(pieces.count) segments: \(split.messages)\nin one: \(whole.messages)")
    check(split.malformed == whole.malformed,
          "malformed count depends on the segmentation: \(split.malformed) vs \(whole.malformed)")
}

