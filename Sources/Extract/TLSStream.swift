/// Finds the ClientHello at the start of a client's TCP byte stream: TLS records of type handshake (22) whose
/// payloads are concatenated until the first handshake message is complete (it may span records and segments).
/// An HTTP CONNECT request before it is skipped (the tunnel's stream is then TLS). Anything else ends the search.
public struct TLSClientHelloCollector: Sendable {
    public enum Outcome: Sendable, Equatable {
        case clientHello(ClientHelloInfo)
        /// Not TLS (or a TLS stream that does not start with a ClientHello), a gap, or a hello past the limits.
        case gaveUp(String)
    }

    private enum State: Sendable { case start, connect, records, finished }
    private var state = State.start
    private var text: [UInt8] = []
    private var record: [UInt8] = []
    private var handshake: [UInt8] = []
    /// Largest ClientHello accepted (post-quantum key shares make them ~2 KB; 64 KB is generous).
    public static let maxHello = 64 * 1024

    public init() {}

    public var finished: Bool { state == .finished }

    /// Feeds in-order bytes; returns an outcome once (then the collector is finished).
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Outcome? {
        var input = bytes
        while !input.isEmpty {
            switch state {
            case .finished:
                return nil
            case .start:
                let b = input[0]
                if b == 22 {
                    state = .records
                } else if b == 0x43 /* C */ {
                    state = .connect
                } else if b & 0x80 != 0 && ClientHelloParser.isSSLv2Hello(input) {
                    return finish(.gaveUp("SSLv2-compatible hello (no extensions)"))
                } else {
                    return finish(.gaveUp("not TLS"))
                }
            case .connect:
                // "CONNECT host:port HTTP/1.x" ... CRLF CRLF, then the tunnel's first bytes.
                let before = text.count
                text.append(contentsOf: input)
                guard text.count <= 8192 else { return finish(.gaveUp("request headers too long")) }
                if text.count >= 8, !text.starts(with: Array("CONNECT ".utf8)) { return finish(.gaveUp("not TLS")) }
                guard let end = headerEnd(text) else { return nil }
                let consumed = end - before
                state = .start
                text = []
                input = UnsafeRawBufferPointer(rebasing: input[consumed...])
            case .records:
                record.append(contentsOf: input)
                input = UnsafeRawBufferPointer(start: nil, count: 0)
                while record.count >= 5 {
                    guard record[0] == 22, record[1] == 3 else {
                        return finish(.gaveUp(handshake.isEmpty ? "not TLS" : "record of type \(record[0]) before the ClientHello ended"))
                    }
                    let length = Int(record[3]) << 8 | Int(record[4])
                    guard record.count >= 5 + length else { break }
                    handshake.append(contentsOf: record[5..<5 + length])
                    record.removeFirst(5 + length)
                    if let outcome = tryParse() { return outcome }
                }
                if record.count + handshake.count > Self.maxHello { return finish(.gaveUp("ClientHello too large")) }
            }
        }
        return nil
    }

    /// The stream skipped bytes: a ClientHello cannot be completed.
    public mutating func gap() -> Outcome? {
        state == .finished ? nil : finish(.gaveUp("gap in the stream before the ClientHello ended"))
    }

    private mutating func tryParse() -> Outcome? {
        guard handshake.count >= 4 else { return nil }
        let total = 4 + (Int(handshake[1]) << 16 | Int(handshake[2]) << 8 | Int(handshake[3]))
        guard total <= Self.maxHello else { return finish(.gaveUp("ClientHello too large")) }
        guard handshake.count >= total else { return nil }
        let result = handshake.withUnsafeBytes { raw -> Outcome in
            do throws(ClientHelloError) {
                return .clientHello(try ClientHelloParser.parse(UnsafeRawBufferPointer(rebasing: raw[0..<total])))
            } catch {
                return .gaveUp("\(error)")
            }
        }
        return finish(result)
    }

    private mutating func finish(_ o: Outcome) -> Outcome {
        state = .finished
        text = []; record = []; handshake = []
        return o
    }

    private func headerEnd(_ t: [UInt8]) -> Int? {
        guard t.count >= 4 else { return nil }
        for i in 3..<t.count where t[i] == 10 && t[i - 1] == 13 && t[i - 2] == 10 && t[i - 3] == 13 { return i + 1 }
        return nil
    }
}
