// HTTP/1.x message parsing over a reassembled TCP stream (RFC 9112): request and status lines, header blocks split
// anywhere across segments, bodies skipped by Content-Length, chunked coding or until close, pipelining, 1xx
// interim responses. Only the fields statetap keeps are copied out. Mid-stream pickup resynchronizes on the next
// line that looks like a request line (client) or a status line (server).

/// A request as statetap keeps it.
public struct HTTPRequest: Sendable, Equatable {
    public var method: String
    public var target: String
    public var version: String
    public var host: String?
    /// The capture cut the header block (snap length): the request line and the header lines before the cut are
    /// what was sent, the rest is unknown.
    public var truncated = false
    /// The absolute URL (nil for CONNECT, whose target is an authority, and for a request that names no host:
    /// see `url(authority:)`).
    public var url: String? {
        if method == "CONNECT" { return nil }
        if let absolute = absoluteURL { return absolute }
        guard let host else { return nil }
        return "http://" + host + (target.hasPrefix("/") ? target : "/" + target)
    }

    /// Whether the request names its host (a Host header, or an absolute-form target): when not, `url(authority:)`
    /// builds the URL from the server's address.
    public var namesHost: Bool { host != nil || absoluteURL != nil }

    /// The absolute URL of a request that names no host, with `authority` (the server's address and port, as the
    /// connection shows them) in its place; the same as `url` otherwise.
    public func url(authority: String) -> String? {
        if method == "CONNECT" { return nil }
        if namesHost { return url }
        return "http://" + authority + (target.hasPrefix("/") ? target : "/" + target)
    }

    /// An absolute-form target (RFC 9112 §3.2.2) of the http or https scheme, its scheme written lower case: the
    /// scheme is case-insensitive (RFC 3986 §3.1, §6.2.2.1), so `HTTP://h/` and `http://h/` are one URL, and
    /// tshark matches it so too. The authority is kept as sent, as a Host header is. Nil for any other target.
    private var absoluteURL: String? {
        let u = target.utf8
        // "http" then ":" or "s:", then "//": matched ignoring case, without building a string.
        var i = u.startIndex
        for c in "http".utf8 {
            guard i != u.endIndex, u[i] | 0x20 == c else { return nil }
            u.formIndex(after: &i)
        }
        var secure = false
        if i != u.endIndex, u[i] | 0x20 == UInt8(ascii: "s") { secure = true; u.formIndex(after: &i) }
        for c in "://".utf8 {
            guard i != u.endIndex, u[i] == c else { return nil }
            u.formIndex(after: &i)
        }
        let scheme = secure ? "https://" : "http://"
        if target.utf8.starts(with: scheme.utf8) { return target }  // already lower case: no new string
        return scheme + String(target[i...])
    }
}

/// A response as statetap keeps it.
public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var version: String
    public var headers: [String: String] = [:]  // lower-cased names of interest -> value
    /// The capture cut the header block (snap length): the headers after the cut are unknown.
    public var truncated = false

    public init(status: Int, version: String, headers: [String: String] = [:], truncated: Bool = false) {
        self.status = status
        self.version = version
        self.headers = headers
        self.truncated = truncated
    }

    /// Header names kept (the web_link fields).
    public static let kept: Set<String> = ["cache-control", "expires", "etag", "last-modified", "vary", "content-type",
                                           "content-length", "age", "via", "x-cache", "x-cache-status", "server",
                                           "pragma", "date"]
}

/// Incremental parser of one direction of an HTTP/1.x connection.
public struct HTTPStreamParser: Sendable {
    public enum Side: Sendable { case client, server }
    public enum Message: Sendable {
        case request(HTTPRequest), response(HTTPResponse)
        /// Bytes were lost (a gap the parser could not skip exactly) or could not be read: messages may be missing
        /// here, so whoever pairs requests with responses must not trust the order across this point.
        case lostSync
    }

    private enum Body: Sendable { case none, length(Int), chunked(ChunkState), untilClose }
    private enum ChunkState: Sendable { case size, data(Int), dataEnd, trailers }

    public let side: Side
    private var header: [UInt8] = []
    private var body = Body.none
    private var chunkLine: [UInt8] = []
    private var synchronized: Bool
    /// Methods of requests still waiting for their response (server side: HEAD has no body).
    public var pendingMethods: [String] = []
    public private(set) var malformed = 0
    /// Interim (1xx) responses read, 101 excepted (it is final: the connection switches protocols). They are not
    /// emitted: the final response that follows is the one paired with the request.
    public private(set) var interim = 0
    /// Messages whose header block the capture cut (snap length), emitted as far as they were captured whole.
    public private(set) var truncatedMessages = 0
    /// Bytes of a header block, and of a chunk-size or trailer line, kept at most: past them the message is
    /// counted malformed and the parser resynchronizes (memory per connection stays bounded).
    public static let maxHeader = 64 * 1024
    public static let maxChunkLine = 8 * 1024
    /// Bytes held for a header block or chunk line in progress (at most `maxHeader` + `maxChunkLine`).
    public var heldBytes: Int { header.count + chunkLine.count }

    public init(side: Side, fromStart: Bool) {
        self.side = side
        synchronized = fromStart
    }

    /// Feeds in-order bytes; `emit` receives each message when its header block is complete.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, emit: (Message) -> Void) {
        var i = 0
        let n = bytes.count
        while i < n {
            switch body {
            case .length(let remaining):
                let take = min(remaining, n - i)
                i += take
                body = remaining - take > 0 ? .length(remaining - take) : .none
                continue
            case .untilClose:
                return
            case .chunked(let state):
                i = chunk(bytes, i, state, emit)
                continue
            case .none:
                break
            }
            // Header block: up to CRLF CRLF (or LF LF).
            if header.isEmpty {
                while i < n, bytes[i] == 13 || bytes[i] == 10 { i += 1 }  // stray CRLF between messages
                if i == n { return }
                if let end = Self.blockEnd(bytes, from: i, kept: []) {
                    // The whole block is in this segment: parsed where it lies, nothing copied.
                    parseBlock(UnsafeRawBufferPointer(rebasing: bytes[i..<end]), emit: emit)
                    i = end
                    continue
                }
            }
            // The block continues in a later segment: kept (bounded) until its end arrives.
            if let end = Self.blockEnd(bytes, from: i, kept: header) {
                header.append(contentsOf: bytes[i..<end])
                i = end
                var block: [UInt8] = []
                swap(&block, &header)  // parsed without copying, its storage reused afterwards
                block.withUnsafeBytes { parseBlock($0, emit: emit) }
                header = block
                header.removeAll(keepingCapacity: true)
                continue
            }
            let take = min(n - i, Self.maxHeader + 1 - header.count)
            header.append(contentsOf: bytes[i..<i + take])
            i += take
            if header.count > Self.maxHeader {
                malformed += 1
                header.removeAll(keepingCapacity: true)
                loseSync(emit)
            }
        }
    }

    /// Where the header block that `kept` starts ends in `bytes` (searching from `from`): the index just past its
    /// blank line (CRLF CRLF, or LF LF), nil when it does not end in `bytes`.
    @inline(__always)
    private static func blockEnd(_ bytes: UnsafeRawBufferPointer, from: Int, kept: [UInt8]) -> Int? {
        // Byte `k` of the block, counting from the start of `bytes` (negative: in `kept`).
        func at(_ k: Int) -> UInt8? {
            if k >= from { return bytes[k] }
            let j = kept.count + (k - from)
            return j >= 0 ? kept[j] : nil
        }
        var j = from
        let n = bytes.count
        while j < n {
            if bytes[j] == 10 {
                let p1 = at(j - 1)
                if p1 == 10 { return j + 1 }
                if p1 == 13, at(j - 2) == 10, at(j - 3) == 13 { return j + 1 }
            }
            j += 1
        }
        return nil
    }

    /// `count` bytes of the stream were never seen. A gap that falls inside a body of known length (or a chunk's
    /// data) is skipped exactly and nothing is lost; otherwise the parser resynchronizes on the next message start
    /// and emits `lostSync`. `count` nil: unknown size.
    public mutating func gap(_ count: Int?, emit: (Message) -> Void) {
        if let count, count > 0 {
            switch body {
            case .length(let remaining) where count <= remaining:
                body = remaining - count > 0 ? .length(remaining - count) : .none
                return
            case .chunked(.data(let remaining)) where count <= remaining:
                body = .chunked(remaining - count > 0 ? .data(remaining - count) : .dataEnd)
                return
            case .untilClose:
                return  // the body runs to the end of the stream anyway
            default:
                break
            }
        }
        header.removeAll(keepingCapacity: true)
        chunkLine.removeAll(keepingCapacity: true)
        body = .none
        loseSync(emit)
    }

    /// `count` bytes right after those fed were sent but not captured (the capture's snap length cut the segment).
    /// A header block in progress is parsed as far as it is whole, as tshark reads a cut frame: when its start line
    /// and some header lines were captured whole, they are a message marked `truncated` (a line cut part way is
    /// dropped, nothing after the cut is guessed); the rest is a gap (see `gap`): skipped exactly inside a body of
    /// known length, otherwise the parser resynchronizes on the next message start.
    public mutating func cut(_ count: Int, emit: (Message) -> Void) {
        if case .none = body, let lastLine = header.lastIndex(of: 10) {
            var block: [UInt8] = []
            swap(&block, &header)
            block.withUnsafeBytes { raw in
                // A block without its blank line: parsed as if it ended after its last whole line.
                parseBlock(UnsafeRawBufferPointer(rebasing: raw[..<(lastLine + 1)]), truncated: true, emit: emit)
            }
            header = block
            header.removeAll(keepingCapacity: true)
            // Its body, if any, starts at an unknown place: whatever the headers said, the parser resynchronizes.
            body = .none
            chunkLine.removeAll(keepingCapacity: true)
            loseSync(emit)
            return
        }
        gap(count, emit: emit)
    }

    private mutating func loseSync(_ emit: (Message) -> Void) {
        if synchronized { emit(.lostSync) }
        synchronized = false
    }

    /// The names of the header fields kept from responses, lower-case, with their `HTTPResponse.headers` keys.
    private static let keptNames: [([UInt8], String)] = HTTPResponse.kept.sorted().map { (Array($0.utf8), $0) }

    /// Parses one header block (start line and fields, without the blank line) where it lies: only the values
    /// kept become strings.
    private mutating func parseBlock(_ block: UnsafeRawBufferPointer, truncated: Bool = false, emit: (Message) -> Void) {
        var pos = 0
        var first: Range<Int>?
        while pos < block.count {
            let line = Self.nextLine(block, &pos)
            if line.isEmpty { continue }
            // Mid-stream: lines are dropped until one starts a message.
            if synchronized || startsMessage(block, line) {
                first = line
                synchronized = true
                break
            }
        }
        guard let first else { return }
        var host: String?
        var length: Int?
        var lengthSeen = false, encodingSeen = false
        var chunked = false
        var headers: [String: String] = [:]
        // Which kept names were seen (bit i: `keptNames[i]`): the first of each wins, found without a lookup.
        var keptSeen: UInt32 = 0
        if side == .server { headers.reserveCapacity(8) }  // a typical response keeps 4 to 8: no regrowth
        while pos < block.count {
            let line = Self.nextLine(block, &pos)
            guard let colon = Self.index(of: 58, in: block, line) else { continue }
            let name = line.lowerBound..<colon
            let value = Self.trimmed(block, colon + 1..<line.upperBound)
            func text() -> String { String(decoding: UnsafeRawBufferPointer(rebasing: block[value]), as: UTF8.self) }
            if Self.nameIs(block, name, "host") {
                if host == nil { host = text() }
            } else if Self.nameIs(block, name, "content-length") {
                if !lengthSeen { lengthSeen = true; length = Self.decimal(block, value) }
            } else if Self.nameIs(block, name, "transfer-encoding") {
                if !encodingSeen { encodingSeen = true; chunked = Self.containsChunked(block, value) }
            }
            if side == .server, name.count <= 14 {
                for (i, (bytes, key)) in Self.keptNames.enumerated() where bytes.count == name.count
                    && Self.nameIs(block, name, bytes)
                {
                    if keptSeen & (1 << UInt32(i)) == 0 {
                        keptSeen |= 1 << UInt32(i)
                        headers[key] = text()
                    }
                    break
                }
            }
        }
        // Request line: method, target, version (any fourth word ignored); status line: version, code, reason.
        let parts = Self.words(block, first, max: side == .client ? 4 : 3)
        switch side {
        case .client:
            guard parts.count >= 2, isToken(block, parts[0]) else { malformed += 1; loseSync(emit); return }
            func word(_ r: Range<Int>) -> String { String(decoding: UnsafeRawBufferPointer(rebasing: block[r]), as: UTF8.self) }
            let r = HTTPRequest(method: word(parts[0]), target: word(parts[1]),
                                version: parts.count >= 3 ? word(parts[2]) : "HTTP/0.9", host: host, truncated: truncated)
            body = chunked ? .chunked(.size) : (length.map { $0 > 0 ? .length($0) : .none } ?? .none)
            if truncated { truncatedMessages += 1 }
            emit(.request(r))
        case .server:
            // Status line: version, code, and the rest (the reason phrase may contain spaces).
            guard parts.count >= 2, Self.startsWith(block, parts[0], "HTTP/"), let status = Self.decimal(block, parts[1])
            else {
                malformed += 1; loseSync(emit); return
            }
            let r = HTTPResponse(status: status,
                                 version: String(decoding: UnsafeRawBufferPointer(rebasing: block[parts[0]]), as: UTF8.self),
                                 headers: headers, truncated: truncated)
            if status >= 100 && status < 200 && status != 101 {
                body = .none  // interim: the final response follows
                interim += 1
                return
            }
            let method = pendingMethods.isEmpty ? "GET" : pendingMethods.removeFirst()
            if method == "HEAD" || status == 204 || status == 304 || (method == "CONNECT" && status / 100 == 2) {
                body = .none
            } else if chunked {
                body = .chunked(.size)
            } else if let length {
                body = length > 0 ? .length(length) : .none
            } else {
                body = .untilClose
            }
            if method == "CONNECT" && status / 100 == 2 { body = .untilClose }  // a tunnel: not HTTP any more
            if truncated { truncatedMessages += 1 }
            emit(.response(r))
        }
    }

    // Byte-range helpers over a block: no allocation.

    /// The line at `pos` without its CR LF; `pos` moves past it.
    private static func nextLine(_ b: UnsafeRawBufferPointer, _ pos: inout Int) -> Range<Int> {
        let start = pos
        while pos < b.count, b[pos] != 10 { pos += 1 }
        var end = pos
        if pos < b.count { pos += 1 }
        if end > start, b[end - 1] == 13 { end -= 1 }
        return start..<end
    }

    private static func index(of byte: UInt8, in b: UnsafeRawBufferPointer, _ r: Range<Int>) -> Int? {
        var i = r.lowerBound
        while i < r.upperBound { if b[i] == byte { return i }; i += 1 }
        return nil
    }

    private static func trimmed(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) -> Range<Int> {
        var lo = r.lowerBound, hi = r.upperBound
        while lo < hi, b[lo] == 32 || b[lo] == 9 { lo += 1 }
        while hi > lo, b[hi - 1] == 32 || b[hi - 1] == 9 { hi -= 1 }
        return lo..<hi
    }

    /// Whether the bytes in `r` equal `lower` ignoring ASCII case (`lower` is lower-case).
    private static func nameIs(_ b: UnsafeRawBufferPointer, _ r: Range<Int>, _ lower: [UInt8]) -> Bool {
        guard r.count == lower.count else { return false }
        var k = 0
        for i in r {
            var c = b[i]
            if c >= 65 && c <= 90 { c |= 0x20 }
            if c != lower[k] { return false }
            k += 1
        }
        return true
    }

    private static func nameIs(_ b: UnsafeRawBufferPointer, _ r: Range<Int>, _ lower: StaticString) -> Bool {
        guard r.count == lower.utf8CodeUnitCount else { return false }
        let p = lower.utf8Start
        var k = 0
        for i in r {
            var c = b[i]
            if c >= 65 && c <= 90 { c |= 0x20 }
            if c != p[k] { return false }
            k += 1
        }
        return true
    }

    private static func startsWith(_ b: UnsafeRawBufferPointer, _ r: Range<Int>, _ prefix: StaticString) -> Bool {
        let n = prefix.utf8CodeUnitCount
        guard r.count >= n else { return false }
        let p = prefix.utf8Start
        for k in 0..<n where b[r.lowerBound + k] != p[k] { return false }
        return true
    }

    /// A non-negative decimal number filling `r` (surrounding spaces already trimmed), nil otherwise.
    private static func decimal(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) -> Int? {
        guard !r.isEmpty, r.count <= 18 else { return nil }
        var v = 0
        for i in r {
            let d = Int(b[i]) - 48
            guard d >= 0 && d <= 9 else { return nil }
            v = v * 10 + d
        }
        return v
    }

    /// Whether a Transfer-Encoding value names the chunked coding (any case).
    private static func containsChunked(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) -> Bool {
        let word: StaticString = "chunked"
        guard r.count >= 7 else { return false }
        for start in r.lowerBound...(r.upperBound - 7) where nameIs(b, start..<start + 7, word) { return true }
        return false
    }

    /// Up to `max` space-separated words of a line; the last one runs to the end of the line.
    private static func words(_ b: UnsafeRawBufferPointer, _ r: Range<Int>, max: Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        out.reserveCapacity(max)
        var i = r.lowerBound
        while i < r.upperBound {
            while i < r.upperBound, b[i] == 32 { i += 1 }
            guard i < r.upperBound else { break }
            if out.count == max - 1 {
                var end = r.upperBound
                while end > i, b[end - 1] == 32 { end -= 1 }
                out.append(i..<end)
                break
            }
            let start = i
            while i < r.upperBound, b[i] != 32 { i += 1 }
            out.append(start..<i)
        }
        return out
    }

    private func startsMessage(_ b: UnsafeRawBufferPointer, _ line: Range<Int>) -> Bool {
        switch side {
        case .server:
            return Self.startsWith(b, line, "HTTP/1.")
        case .client:
            let parts = Self.words(b, line, max: 4)
            return parts.count == 3 && isToken(b, parts[0]) && Self.startsWith(b, parts[2], "HTTP/")
        }
    }

    private func isToken(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) -> Bool {
        guard !r.isEmpty, r.count <= 24 else { return false }
        for i in r {
            let c = b[i]
            guard (c >= 65 && c <= 90) || c == 45 || c == 95 else { return false }
        }
        return true
    }

    /// Chunked body: size line, data, CRLF, ..., last chunk, trailers until an empty line.
    private mutating func chunk(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ state: ChunkState,
                                _ emit: (Message) -> Void) -> Int
    {
        var i = start
        switch state {
        case .data(let remaining):
            let take = min(remaining, bytes.count - i)
            i += take
            body = .chunked(remaining - take > 0 ? .data(remaining - take) : .dataEnd)
        case .size, .dataEnd, .trailers:
            while i < bytes.count {
                let b = bytes[i]
                i += 1
                if b != 10 {
                    if b != 13 { chunkLine.append(b) }
                    if chunkLine.count > Self.maxChunkLine {
                        // An endless chunk-size or trailer line: not HTTP any more; bounded memory.
                        malformed += 1
                        chunkLine.removeAll(keepingCapacity: true)
                        body = .none
                        loseSync(emit)
                        return i
                    }
                    continue
                }
                var line: [UInt8] = []
                swap(&line, &chunkLine)  // read without a copy; its storage is reused below
                defer { chunkLine = line; chunkLine.removeAll(keepingCapacity: true) }
                switch state {
                case .dataEnd:
                    body = .chunked(.size)  // the CRLF after a chunk's data
                case .size:
                    guard let size = Self.hexSize(line) else {
                        malformed += 1
                        body = .none
                        loseSync(emit)
                        return i
                    }
                    body = .chunked(size == 0 ? .trailers : .data(size))
                case .trailers:
                    body = line.isEmpty ? .none : .chunked(.trailers)
                case .data:
                    break
                }
                return i
            }
        }
        return i
    }
}

extension HTTPStreamParser {
    /// A chunk-size line's size: hex digits before any `;` extension or space; nil when there are none or too many.
    fileprivate static func hexSize(_ line: [UInt8]) -> Int? {
        var v = 0, digits = 0
        for c in line {
            let d: Int
            switch c {
            case 48...57: d = Int(c) - 48
            case 65...70: d = Int(c) - 55
            case 97...102: d = Int(c) - 87
            case 59, 32, 9: return digits > 0 ? v : nil
            default: return nil
            }
            digits += 1
            guard digits <= 15 else { return nil }
            v = v << 4 | d
        }
        return digits > 0 ? v : nil
    }
}

extension String {
    /// Without leading and trailing spaces and tabs (header values).
    public func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
