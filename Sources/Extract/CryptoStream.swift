/// Reassembles the CRYPTO stream of one QUIC connection's client Initials (out of order, across packets and
/// datagrams: large post-quantum ClientHellos span several) until the ClientHello is complete. Bounded: at most
/// `limit` bytes are kept.
public struct CryptoStreamAssembler: Sendable {
    private var buffer: [UInt8] = []
    private var have: [Bool] = []
    public let limit: Int
    public private(set) var finished = false

    public init(limit: Int = 64 * 1024) { self.limit = limit }

    /// Bytes of memory held (data and presence map); zero once finished.
    public var held: Int { buffer.count + have.count }

    /// Stops: the buffers go, later frames are ignored.
    public mutating func close() {
        finished = true
        buffer = []
        have = []
    }

    /// Adds a CRYPTO frame; returns the complete ClientHello message once bytes 0..<4+length are all present.
    public mutating func add(offset: UInt64, data: [UInt8]) -> [UInt8]? {
        guard !finished, offset < UInt64(limit) else { return nil }
        let start = Int(offset)
        let end = min(start + data.count, limit)
        if buffer.count < end {
            buffer += [UInt8](repeating: 0, count: end - buffer.count)
            have += [Bool](repeating: false, count: end - have.count)
        }
        for i in start..<end where !have[i] {  // first copy wins
            buffer[i] = data[i - start]
            have[i] = true
        }
        guard have.count >= 4, have[0], have[1], have[2], have[3] else { return nil }
        let total = 4 + (Int(buffer[1]) << 16 | Int(buffer[2]) << 8 | Int(buffer[3]))
        guard total <= limit else { close(); return nil }
        guard have.count >= total, !have[0..<total].contains(false) else { return nil }
        let hello = Array(buffer[0..<total])
        close()
        return hello
    }
}
