#if canImport(Glibc)
import Glibc
#endif
import Extract

/// Writes events, one JSON object a line. Used by the sink thread only (then closed by the main thread after the
/// pipeline is joined). Lines are encoded as bytes into one reused buffer, written out when it holds 64 KB.
public final class EventWriter: @unchecked Sendable {
    /// A file that cannot be opened for writing: its path and the reason.
    public struct OpenError: Error, CustomStringConvertible {
        public let description: String
    }

    private let file: UnsafeMutablePointer<FILE>
    private let owned: Bool
    private var buffer: [UInt8] = []
    private static let flushAt = 64 * 1024
    /// A terminal sees each event as it comes (live capture); files and pipes get 64 KB writes.
    private let lineByLine: Bool

    /// Writes to `path`, or to standard output when nil.
    public init(path: String?) throws(OpenError) {
        if let path {
            guard let f = fopen(path, "w") else {
                throw OpenError(description: "cannot write --events-out '\(path)': \(String(cString: strerror(errno)))")
            }
            file = f
            owned = true
        } else {
            file = fdopen(dup(1), "w")
            owned = true
        }
        buffer.reserveCapacity(Self.flushAt + 16 * 1024)
        lineByLine = isatty(fileno(file)) != 0
    }

    public func write(_ e: StateEvent) {
        e.appendJSON(to: &buffer)
        buffer.append(0x0a)
        if buffer.count >= Self.flushAt || lineByLine { drain() }
    }

    private func drain() {
        buffer.withUnsafeBytes { _ = fwrite($0.baseAddress, 1, $0.count, file) }
        buffer.removeAll(keepingCapacity: true)
        if lineByLine { fflush(file) }
    }

    public func close() {
        drain()
        fflush(file)
        if owned { fclose(file) }
    }
}
