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
    /// The absolute URL (nil for CONNECT, whose target is an authority).
    public var url: String? {
        if method == "CONNECT" { return nil }
        if target.hasPrefix("http://") || target.hasPrefix("https://") { return target }
        guard let host else { return nil }
        return "http://" + host + (target.hasPrefix("/") ? target : "/" + target)
    }
}

/// A response as statetap keeps it.
public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var version: String
    public var headers: [String: String] = [:]  // lower-cased names of interest -> value

    public init(status: Int, version: String, headers: [String: String] = [:]) {
        self.status = status
        self.version = version
        self.headers = headers
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
            let b = bytes[i]
            i += 1
            if header.isEmpty && (b == 13 || b == 10) { continue }  // stray CRLF between messages
            header.append(b)
            if header.count > Self.maxHeader {
                malformed += 1
                header.removeAll(keepingCapacity: true)
                loseSync(emit)
                continue
            }
            if b == 10, endsBlock() {
                let block = header
                header.removeAll(keepingCapacity: true)
                parseBlock(block, emit: emit)
            }
        }
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

    private mutating func loseSync(_ emit: (Message) -> Void) {
        if synchronized { emit(.lostSync) }
        synchronized = false
    }

    private func endsBlock() -> Bool {
        let c = header.count
        if c >= 2 && header[c - 2] == 10 { return true }
        return c >= 4 && header[c - 2] == 13 && header[c - 3] == 10 && header[c - 4] == 13
    }

    private mutating func parseBlock(_ block: [UInt8], emit: (Message) -> Void) {
        var lines = block.split(separator: 10, omittingEmptySubsequences: true).map { line -> ArraySlice<UInt8> in
            line.last == 13 ? line.dropLast() : line
        }
        guard !lines.isEmpty else { return }
        if !synchronized {
            // Mid-stream: drop lines until one starts a message.
            guard let start = lines.firstIndex(where: { startsMessage($0) }) else { return }
            lines.removeFirst(start)
            synchronized = true
        }
        let first = lines.removeFirst()
        var fields: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: 58) else { continue }
            let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self).lowercased()
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingSpaces()
            fields.append((name, value))
        }
        func field(_ n: String) -> String? { fields.first { $0.0 == n }?.1 }
        let chunked = field("transfer-encoding")?.lowercased().contains("chunked") ?? false
        let length = field("content-length").flatMap { Int($0.trimmingSpaces()) }
        switch side {
        case .client:
            let parts = first.split(separator: 32, omittingEmptySubsequences: true)
            guard parts.count >= 2, isToken(parts[0]) else { malformed += 1; loseSync(emit); return }
            let method = String(decoding: parts[0], as: UTF8.self)
            let target = String(decoding: parts[1], as: UTF8.self)
            let version = parts.count >= 3 ? String(decoding: parts[2], as: UTF8.self) : "HTTP/0.9"
            let r = HTTPRequest(method: method, target: target, version: version, host: field("host"))
            body = chunked ? .chunked(.size) : (length.map { $0 > 0 ? .length($0) : .none } ?? .none)
            emit(.request(r))
        case .server:
            let parts = first.split(separator: 32, maxSplits: 2, omittingEmptySubsequences: true)
            guard parts.count >= 2, parts[0].starts(with: Array("HTTP/".utf8)),
                  let status = Int(String(decoding: parts[1], as: UTF8.self)) else {
                malformed += 1; loseSync(emit); return
            }
            var r = HTTPResponse(status: status, version: String(decoding: parts[0], as: UTF8.self))
            for (n, v) in fields where HTTPResponse.kept.contains(n) && r.headers[n] == nil { r.headers[n] = v }
            if status >= 100 && status < 200 && status != 101 {
                body = .none  // interim: the final response follows
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
            emit(.response(r))
        }
    }

    private func startsMessage(_ line: ArraySlice<UInt8>) -> Bool {
        switch side {
        case .server:
            return line.starts(with: Array("HTTP/1.".utf8))
        case .client:
            let parts = line.split(separator: 32, omittingEmptySubsequences: true)
            return parts.count == 3 && isToken(parts[0]) && parts[2].starts(with: Array("HTTP/".utf8))
        }
    }

    private func isToken(_ s: ArraySlice<UInt8>) -> Bool {
        !s.isEmpty && s.count <= 24 && s.allSatisfy { ($0 >= 65 && $0 <= 90) || $0 == 45 || $0 == 95 }
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
                let line = chunkLine
                chunkLine.removeAll(keepingCapacity: true)
                switch state {
                case .dataEnd:
                    body = .chunked(.size)  // the CRLF after a chunk's data
                case .size:
                    let hexPart = line.prefix { $0 != 59 && $0 != 32 }  // before ';' extensions
                    guard let size = Int(String(decoding: hexPart, as: UTF8.self), radix: 16) else {
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

extension String {
    /// Without leading and trailing spaces and tabs (header values).
    public func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
