import Foundation
import Hummingbird
import NIOCore
import Extract
import Journal
import MigrationAPI

/// The transfer body's encoding: an LZ4 frame (with content checksum) of the plan's JSON.
public enum SliceCodec {
    public static let contentEncoding = "x-lz4-frame"

    public static func compress(_ raw: [UInt8]) -> [UInt8] { LZ4Frame.compress(raw) }

    /// Decompresses a frame of at most `limit` bytes of content; nil with a reason when it is not one, is
    /// damaged, or is larger.
    public static func decompress(_ frame: [UInt8], limit: Int) -> Result<[UInt8], SliceError> {
        let result = frame.withUnsafeBytes { LZ4FrameDecoder().decompress($0, limit: limit) }
        return result.mapError { damage in
            switch damage.kind {
            case .tooLarge: SliceError(message: "the decompressed body exceeds \(limit) bytes", tooLarge: true)
            case .truncated: SliceError(message: "the LZ4 frame is truncated")
            case .trailingBytes: SliceError(message: "bytes after the end of the LZ4 frame")
            case .invalid, .lengthMismatch: SliceError(message: "the body is not a valid LZ4 frame: \(damage.reason)")
            }
        }
    }
}

public struct SliceError: Error, Sendable {
    public var message: String
    public var tooLarge = false

    public init(message: String, tooLarge: Bool = false) {
        self.message = message
        self.tooLarge = tooLarge
    }
}

/// Bearer-token authentication on every route: a request without `Authorization: Bearer <token>` gets 401 and
/// `WWW-Authenticate: Bearer`. Tokens are compared in constant time.
public struct BearerAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]

    public init(token: String) { self.token = Array(token.utf8) }

    public func handle(_ request: Request, context: Context,
                       next: (Request, Context) async throws -> Response) async throws -> Response
    {
        // The scheme name is case-insensitive (RFC 9110 11.1); the token is not.
        guard let header = request.headers[.authorization], header.count > 7,
              header.prefix(7).lowercased() == "bearer ",
              constantTimeEqual(Array(header.utf8.dropFirst(7)), token)
        else {
            var headers = HTTPFields()
            headers[.wwwAuthenticate] = "Bearer"
            headers[.contentType] = "application/json"
            let why = request.headers[.authorization] == nil ? "missing bearer token" : "invalid bearer token"
            return Response(status: .unauthorized, headers: headers,
                            body: .init(byteBuffer: ByteBuffer(string: errorJSON(why))))
        }
        return try await next(request, context)
    }
}

func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for i in 0..<a.count { diff |= a[i] ^ b[i] }
    return diff == 0
}

func errorJSON(_ message: String) -> String { "{\"error\":" + jsonQuoted(message) + "}" }

/// An API error with a message the client reads (`{"error": "..."}`).
public struct APIError: HTTPResponseError {
    public var status: HTTPResponse.Status
    public var message: String
    /// Sent with the error (e.g. `Retry-After` with 429).
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: errorJSON(message))))
    }
}

/// A JSON response encoded with statetap's coder.
func jsonResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok, extra: HTTPFields = [:]) throws -> Response {
    var headers = extra
    headers[.contentType] = "application/json"
    let data = try JSONCoding.encoder.encode(value)
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// A request's whole body, at most `limit` bytes (413 beyond, 400 when it cannot be read).
func bodyBytes(_ request: Request, limit: Int) async throws -> [UInt8] {
    var request = request
    let buffer: ByteBuffer
    do {
        buffer = try await request.collectBody(upTo: limit)
    } catch is NIOTooManyBytesError {
        throw APIError(.contentTooLarge, "request body larger than \(limit) bytes")
    } catch {
        throw APIError(.badRequest, "the request body could not be read: \(error)")
    }
    return Array(buffer.readableBytesView)
}

/// Reads a request body of at most `limit` bytes (413 beyond) and decodes it (400 with the decoder's reason).
func decodeBody<T: Decodable>(_ type: T.Type, _ request: Request, limit: Int, decoder: JSONDecoder = JSONCoding.decoder,
                              transform: (([UInt8]) throws -> [UInt8])? = nil) async throws -> T
{
    var bytes = try await bodyBytes(request, limit: limit)
    if let transform { bytes = try transform(bytes) }
    if let duplicate = JSONDuplicateKeys.first(in: bytes) {
        // JSONDecoder would keep one of them silently: which one the sender meant is unknown.
        throw APIError(.badRequest, "invalid \(T.self) JSON: the key \(quoted(duplicate)) appears twice in one object")
    }
    do {
        return try decoder.decode(T.self, from: Data(bytes))
    } catch let e as DecodingError {
        throw APIError(.badRequest, "invalid \(T.self) JSON: \(describeDecodingError(e))")
    } catch {
        throw APIError(.badRequest, "invalid JSON: \(error)")
    }
}

/// Reads the API token: from `file` (first line, trimmed), else from the environment variable `STATETAP_TOKEN`.
public func loadToken(file: String?) throws(SliceError) -> String {
    if let file {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw SliceError(message: "cannot read the token file \(quoted(file))")
        }
        let token = text.split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard token.count >= 16 else { throw SliceError(message: "the token in \(quoted(file)) is shorter than 16 characters") }
        return token
    }
    if let env = ProcessInfo.processInfo.environment["STATETAP_TOKEN"], !env.isEmpty {
        guard env.count >= 16 else { throw SliceError(message: "STATETAP_TOKEN is shorter than 16 characters") }
        return env
    }
    throw SliceError(message: "no API token: give --token-file FILE or set STATETAP_TOKEN (16 characters or more)")
}

/// `HOST:PORT` or `[V6]:PORT` → (host, port).
public func parseListenAddress(_ text: String) -> (host: String, port: Int)? {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
          (0...65535).contains(port) else { return nil }
    var host = String(text[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    guard !host.isEmpty else { return nil }
    return (host, port)
}

func unixMilliseconds(_ date: Date = Date()) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }

