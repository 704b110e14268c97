import Extract
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// `--tls-keylog FILE`: the edge proxy's key log, followed like `tail -F`. Lines appended are read as they come
/// (every `interval`, 10 ms by default: a stat(2) when nothing changed); a file replaced (a new inode: rotation) or shortened (truncated) is read again from its
/// start; a file that does not exist yet is waited for. A line is taken only when whole (its newline written).
/// Secrets go to the key store and nowhere else: what is logged is counts and line numbers, never a line.
public final class TLSKeyLogFollower: Service, @unchecked Sendable {
    // @unchecked Sendable: the file state is touched only by `poll`, which runs on one task at a time (`run`, or the
    // caller before it starts).
    public let path: String
    private let store: TLSKeyStore
    private let log: Logger
    private let intervalNanoseconds: UInt64
    private var fd: Int32 = -1
    private var inode: UInt64 = 0
    private var offset: Int64 = 0
    private var partial: [UInt8] = []
    private var lineNumber = 0
    private var warnedMissing = false
    public private(set) var accepted = 0
    public private(set) var rejected = 0

    public init(path: String, store: TLSKeyStore, intervalNanoseconds: UInt64 = 10_000_000, log: Logger) {
        self.path = path
        self.store = store
        self.intervalNanoseconds = intervalNanoseconds
        self.log = log
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Why the file cannot be followed at all.
    public struct OpenError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Checks that the file can be read now (a missing file is an error at start: a typo should not wait forever).
    public func check() throws(OpenError) {
        let f = open(path, O_RDONLY | O_CLOEXEC)
        guard f >= 0 else {
            throw OpenError(description: "cannot read the TLS key log '\(path)': \(String(cString: strerror(errno)))")
        }
        close(f)
    }

    /// Reads what was appended since the last call; the lines accepted.
    @discardableResult
    public func poll() -> Int {
        var st = stat()
        if stat(path, &st) != 0 {
            if !warnedMissing {
                log.warning("TLS key log '\(path)' is gone; waiting for it to come back")
                warnedMissing = true
            }
            return 0
        }
        warnedMissing = false
        var added = 0
        let replaced = fd >= 0 && UInt64(st.st_ino) != inode
        if fd < 0 || replaced || Int64(st.st_size) < offset {
            if fd >= 0 {
                // Rotated: what was appended to the old file before it moved is read first (nothing is lost
                // between our last read and the rename). Truncated: the bytes are gone.
                if replaced { added += drain() }
                close(fd)
                log.info("TLS key log '\(path)' was replaced or truncated: reading it from its start")
            }
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return added }
            inode = UInt64(st.st_ino)
            offset = 0
            partial = []
            lineNumber = 0
        } else if Int64(st.st_size) == offset {
            return 0  // nothing new: one stat(2)
        }
        return added + drain()
    }

    /// Reads the open file from `offset` to its end; the lines accepted.
    private func drain() -> Int {
        var added = 0
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
            guard n > 0 else { break }
            offset += Int64(n)
            partial.append(contentsOf: buffer[0..<n])
            guard let last = partial.lastIndex(of: 10) else {
                if partial.count > 1 << 20 { partial = [] }  // not a key log: no line of a megabyte
                continue
            }
            let text = String(decoding: partial[...last], as: UTF8.self)
            partial.removeFirst(last + 1)
            let intake = store.add(text: Substring(text.dropLast()))
            if let (line, problem) = intake.firstProblem {
                log.warning("TLS key log '\(path)' line \(lineNumber + line): \(problem) (\(intake.rejected) line(s) rejected)")
            }
            lineNumber += intake.accepted + intake.ignored + intake.rejected
            accepted += intake.accepted
            rejected += intake.rejected
            added += intake.accepted
        }
        return added
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            poll()
            try? await Task.sleep(nanoseconds: intervalNanoseconds)
        }
    }
}
