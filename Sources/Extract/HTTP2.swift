import CNghttp2

// HTTP/2 as a passive reader sees it (RFC 9113): each direction of a connection is a stream of frames; header
// blocks (HEADERS, PUSH_PROMISE, CONTINUATION) are decoded with libnghttp2's HPACK inflater (RFC 7541), one per
// direction, in order, including blocks of streams nobody asked for (the dynamic table depends on every block).

/// One direction's HPACK decoder: libnghttp2's inflater. After an error it is unusable (libnghttp2 marks it
/// bad), as the connection is for a passive reader: its header state is lost.
public final class HPACKDecoder {
    private var inflater: OpaquePointer?
    /// Fields and bytes of one header block, at most (libnghttp2 bounds each name and value at 64 KiB and the
    /// table by its size, not the list): past these the block is an error.
    public static let maxFields = 256
    public static let maxBlockBytes = 256 * 1024

    public enum Failure: Error, Equatable, Sendable {
        /// The inflater rejected the block (libnghttp2's error code).
        case inflate(Int)
        case tooManyFields
        case tooLarge
        case unusable
    }

    public init() {
        var p: OpaquePointer?
        if nghttp2_hd_inflate_new(&p) == 0 {
            inflater = p  // the table may hold 4096 bytes (RFC 9113 §6.5.2's default) until `allowTableSize`
        }
    }

    /// The most a peer may let its encoder's table grow to (a SETTINGS_HEADER_TABLE_SIZE above it is read as this):
    /// the decoder's memory per direction stays small whatever a connection advertises.
    public static let maxTableSize = 65536

    /// The decoding side's SETTINGS_HEADER_TABLE_SIZE, seen on the wire: the encoder may now grow its table to it.
    /// Only ever raised (from 4096 up to `maxTableSize`): a passive reader cannot tell exactly when the encoder saw
    /// a reduction, and a larger allowance never refuses a valid block (RFC 7541 §4.2: the encoder signals every
    /// change of its table's size in the block itself).
    public func allowTableSize(_ size: UInt32) {
        guard let inflater else { return }
        let n = min(Int(size), Self.maxTableSize)
        guard n > allowed else { return }
        allowed = n
        _ = nghttp2_hd_inflate_change_table_size(inflater, n)
    }
    private var allowed = 4096

    deinit {
        if let inflater { nghttp2_hd_inflate_del(inflater) }
    }

    /// Decodes one whole header block (the fragments of HEADERS/PUSH_PROMISE and its CONTINUATIONs joined):
    /// `emit` receives each field as it is decoded (the bytes are valid only during the call).
    public func decode(_ block: UnsafeRawBufferPointer,
                       emit: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) throws(Failure)
    {
        guard let inflater else { throw .unusable }
        guard block.count <= Self.maxBlockBytes else { self.fail(); throw .tooLarge }
        // An empty block holds no instruction: nothing to decode, the table unchanged.
        guard let base = block.baseAddress?.assumingMemoryBound(to: UInt8.self), !block.isEmpty else { return }
        var at = 0
        var fields = 0
        while true {
            var nv = nghttp2_nv()
            var flags: Int32 = 0
            let n = nghttp2_hd_inflate_hd2(inflater, &nv, &flags, base + at, block.count - at, 1)
            if n < 0 { self.fail(); throw .inflate(n) }
            at += n
            if flags & Int32(NGHTTP2_HD_INFLATE_EMIT.rawValue) != 0 {
                fields += 1
                guard fields <= Self.maxFields else { self.fail(); throw .tooManyFields }
                emit(UnsafeRawBufferPointer(start: nv.name, count: nv.namelen),
                     UnsafeRawBufferPointer(start: nv.value, count: nv.valuelen))
            }
            if flags & Int32(NGHTTP2_HD_INFLATE_FINAL.rawValue) != 0 {
                nghttp2_hd_inflate_end_headers(inflater)
                return
            }
            if flags & Int32(NGHTTP2_HD_INFLATE_EMIT.rawValue) == 0 && at >= block.count {
                // in_final was set: libnghttp2 reports FINAL once the block is consumed; not reaching it is an error.
                self.fail()
                throw .inflate(Int(NGHTTP2_ERR_HEADER_COMP.rawValue))
            }
        }
    }

    /// The dynamic table's size in RFC 7541 terms (entries' bytes + 32 each).
    public var dynamicTableSize: Int { inflater.map { nghttp2_hd_inflate_get_dynamic_table_size($0) } ?? 0 }

    private func fail() {
        if let inflater { nghttp2_hd_inflate_del(inflater) }
        inflater = nil
    }
}

/// One header block, decoded: pseudo-headers apart, the regular fields kept that a web_link uses.
public struct HTTP2Headers: Sendable, Equatable {
    public var method: String?
    public var scheme: String?
    public var authority: String?
    public var path: String?
    public var status: Int?
    /// `host`, for a request without `:authority` (RFC 9113 §8.3.1).
    public var host: String?
    /// Lower-cased names of `HTTPResponse.kept` -> value (repeated fields joined with ", ").
    public var kept: [String: String] = [:]
    /// Some fields were not kept: over `maxKeptBytes` together, or not UTF-8 (the event is marked truncated).
    public var truncated = false
    public init() {}

    /// Bytes of the fields kept from one block, at most (as an HTTP/1.x header block): what a block's references
    /// to its dynamic table expand to is bounded by this, not by the block's size.
    public static let maxKeptBytes = HTTPStreamParser.maxHeader
}

/// What one direction's frames gave.
public enum HTTP2Event: Sendable, Equatable {
    /// A complete header block on a stream (`promised`: a PUSH_PROMISE's promised stream, whose request this is).
    case headers(stream: UInt32, HTTP2Headers, endStream: Bool, promised: UInt32?)
    case endStream(UInt32)
    case reset(UInt32)
    case goaway(lastStream: UInt32)
    /// The sender's SETTINGS_HEADER_TABLE_SIZE: the table the other direction's encoder may use.
    case headerTableSize(UInt32)
    /// The direction cannot be read any more (HPACK error, a frame past the limits, a bad preface): what follows is
    /// lost.
    case lostSync(String)
}

/// Reads one direction of an HTTP/2 connection from in-order plaintext (`feed`), frame by frame. Frames other
/// than header blocks are skipped without being buffered (DATA is most bytes); header blocks are joined across
/// CONTINUATION and decoded in order.
public struct HTTP2FrameReader {
    public enum Side: Sendable { case client, server }
    private static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    /// Largest frame payload buffered (SETTINGS_MAX_FRAME_SIZE may be raised to 16 MiB; header frames this large
    /// are not seen in practice).
    public static let maxBufferedFrame = 1 << 20

    private let side: Side
    private var prefaceLeft: Int
    private var header: [UInt8] = []
    /// The frame being read: its type, flags, stream, payload bytes left.
    private var type: UInt8 = 0
    private var flags: UInt8 = 0
    private var stream: UInt32 = 0
    private var left = 0
    private var inFrame = false
    private var payload: [UInt8] = []
    /// A header block waiting for its CONTINUATIONs.
    private var block: [UInt8] = []
    private var blockStream: UInt32 = 0
    private var blockEndStream = false
    private var blockPromised: UInt32?
    private var continuing = false
    private var lost = false
    private let hpack = HPACKDecoder()
    public private(set) var frames: UInt64 = 0

    public init(side: Side) {
        self.side = side
        prefaceLeft = side == .client ? Self.preface.count : 0
    }

    public var failed: Bool { lost }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ out: (HTTP2Event) -> Void) {
        var i = 0
        while i < bytes.count && !lost {
            if prefaceLeft > 0 {
                let at = Self.preface.count - prefaceLeft
                guard bytes[i] == Self.preface[at] else { return fail("no HTTP/2 connection preface", out) }
                prefaceLeft -= 1
                i += 1
                continue
            }
            if !inFrame {
                let take = min(9 - header.count, bytes.count - i)
                header.append(contentsOf: bytes[i..<i + take])
                i += take
                guard header.count == 9 else { return }
                left = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
                type = header[3]
                flags = header[4]
                stream = (UInt32(header[5]) << 24 | UInt32(header[6]) << 16 | UInt32(header[7]) << 8 | UInt32(header[8])) & 0x7fff_ffff
                header.removeAll(keepingCapacity: true)
                inFrame = true
                frames &+= 1
                if continuing && type != 0x9 { return fail("frame of type \(type) inside a header block", out) }
                if buffers(type) && left > Self.maxBufferedFrame { return fail("header frame of \(left) bytes", out) }
                // A large frame's buffer is not kept for the connection's life.
                if payload.capacity > 64 * 1024 { payload = [] } else { payload.removeAll(keepingCapacity: true) }
                if left == 0 { endFrame(out) }
                continue
            }
            let take = min(left, bytes.count - i)
            if buffers(type) { payload.append(contentsOf: bytes[i..<i + take]) }
            left -= take
            i += take
            if left == 0 { endFrame(out) }
        }
    }

    private func buffers(_ t: UInt8) -> Bool { t == 0x1 || t == 0x5 || t == 0x9 || t == 0x3 || t == 0x7 || t == 0x4 }

    private mutating func endFrame(_ out: (HTTP2Event) -> Void) {
        inFrame = false
        switch type {
        case 0x0:  // DATA
            if flags & 0x1 != 0 { out(.endStream(stream)) }
        case 0x1, 0x5:  // HEADERS, PUSH_PROMISE
            var p = payload[...]
            var pad = 0
            if flags & 0x8 != 0 {  // PADDED
                guard let n = p.first else { return fail("padded frame without its pad length", out) }
                pad = Int(n)
                p = p.dropFirst()
            }
            var promised: UInt32?
            if type == 0x1 && flags & 0x20 != 0 {  // PRIORITY
                guard p.count >= 5 else { return fail("HEADERS shorter than its priority", out) }
                p = p.dropFirst(5)
            }
            if type == 0x5 {
                guard p.count >= 4 else { return fail("PUSH_PROMISE shorter than its promised stream", out) }
                let b = Array(p.prefix(4))
                promised = (UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3])) & 0x7fff_ffff
                p = p.dropFirst(4)
            }
            guard pad <= p.count else { return fail("padding longer than the frame", out) }
            block.removeAll(keepingCapacity: true)
            block.append(contentsOf: p.dropLast(pad))
            blockStream = stream
            blockEndStream = type == 0x1 && flags & 0x1 != 0
            blockPromised = promised
            if flags & 0x4 != 0 { decodeBlock(out) } else { continuing = true }
        case 0x9:  // CONTINUATION
            guard continuing, stream == blockStream else { return fail("CONTINUATION without its header block", out) }
            guard block.count + payload.count <= HPACKDecoder.maxBlockBytes else { return fail("header block too large", out) }
            block.append(contentsOf: payload)
            if flags & 0x4 != 0 {
                continuing = false
                decodeBlock(out)
            }
        case 0x3:  // RST_STREAM
            out(.reset(stream))
        case 0x7:  // GOAWAY
            guard payload.count >= 8 else { return fail("GOAWAY shorter than 8 bytes", out) }
            let last = (UInt32(payload[0]) << 24 | UInt32(payload[1]) << 16 | UInt32(payload[2]) << 8 | UInt32(payload[3])) & 0x7fff_ffff
            out(.goaway(lastStream: last))
        case 0x4 where flags & 0x1 == 0 && stream == 0:  // SETTINGS (not an ACK)
            var at = 0
            while at + 6 <= payload.count {
                if payload[at] == 0 && payload[at + 1] == 1 {  // SETTINGS_HEADER_TABLE_SIZE
                    out(.headerTableSize(UInt32(payload[at + 2]) << 24 | UInt32(payload[at + 3]) << 16
                        | UInt32(payload[at + 4]) << 8 | UInt32(payload[at + 5])))
                }
                at += 6
            }
        default:
            break  // SETTINGS ACKs, PING, WINDOW_UPDATE, PRIORITY, unknown types (RFC 9113 §5.5: ignored)
        }
    }

    /// The names a block is read for: pseudo-headers, `host`, and (responses) `HTTPResponse.kept`.
    private enum Wanted { case method, scheme, authority, path, status, host, kept(String) }
    private static let pseudoNames: [([UInt8], Wanted)] = [
        (Array(":method".utf8), .method), (Array(":scheme".utf8), .scheme), (Array(":authority".utf8), .authority),
        (Array(":path".utf8), .path), (Array(":status".utf8), .status),
    ]
    private static let keptNames: [([UInt8], Wanted)] = HTTPResponse.kept.sorted().map { (Array($0.utf8), .kept($0)) }
    private static let hostName = Array("host".utf8)

    /// Which wanted field `name` is (HPACK names are lower-case, RFC 9113 §8.2.1: compared as bytes, no copy).
    private func wanted(_ name: UnsafeRawBufferPointer) -> Wanted? {
        guard let first = name.first else { return nil }
        if first == 0x3a {
            for (n, w) in Self.pseudoNames where n.count == name.count && n.elementsEqual(name) { return w }
            return nil
        }
        if name.count == 4 && Self.hostName.elementsEqual(name) { return .host }
        // Requests keep no other field; the server's PUSH_PROMISE blocks are requests too, but harmless.
        guard side == .server, name.count <= 14 else { return nil }
        for (n, w) in Self.keptNames where n.count == name.count && n.elementsEqual(name) { return w }
        return nil
    }

    private mutating func decodeBlock(_ out: (HTTP2Event) -> Void) {
        continuing = false
        var h = HTTP2Headers()
        var keptBytes = 0
        let failure = block.withUnsafeBytes { raw -> HPACKDecoder.Failure? in
            do throws(HPACKDecoder.Failure) {
                try hpack.decode(raw) { name, value in
                    // Only wanted fields are looked at, and only up to `maxKeptBytes` of them: a block of
                    // references to a large table entry costs the decoder's copy, nothing more.
                    guard let w = wanted(name) else { return }
                    guard keptBytes + value.count <= HTTP2Headers.maxKeptBytes, validUTF8(value) else {
                        h.truncated = true
                        return
                    }
                    keptBytes += value.count
                    let v = String(decoding: value, as: UTF8.self)
                    switch w {
                    case .method: h.method = v
                    case .scheme: h.scheme = v
                    case .authority: h.authority = v
                    case .path: h.path = v
                    case .status: h.status = decimalInt(value)
                    case .host: if h.host == nil { h.host = v }
                    case .kept(let n): if let old = h.kept[n] { h.kept[n] = old + ", " + v } else { h.kept[n] = v }
                    }
                }
                return nil
            } catch {
                return error
            }
        }
        if let failure { return fail("HPACK: \(failure)", out) }
        out(.headers(stream: blockStream, h, endStream: blockEndStream, promised: blockPromised))
        if block.capacity > 64 * 1024 { block = [] } else { block.removeAll(keepingCapacity: true) }
    }

    /// The other direction's SETTINGS_HEADER_TABLE_SIZE (`HTTP2Event.headerTableSize`): this direction's encoder
    /// may use a table that large.
    public func allowTableSize(_ size: UInt32) { hpack.allowTableSize(size) }

    /// Bytes held for a frame or a header block in progress (charged to the worker's memcap by the tracker).
    public var buffered: Int { payload.count + block.count + header.count }

    private mutating func fail(_ why: String, _ out: (HTTP2Event) -> Void) {
        lost = true
        payload = []
        block = []
        out(.lostSync(why))
    }
}
