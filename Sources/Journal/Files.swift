#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// The journal's system calls, in one place: typed errors, EINTR retried, files created 0600 (the journal is
/// browsing history).
enum Files {
    static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }

    static func fail(_ what: String, _ path: String, _ code: Int32 = errno) -> JournalError {
        let kind: JournalError.Kind = code == ENOSPC || code == EDQUOT ? .diskFull : .io
        return JournalError(kind, "\(what) \(path): \(errorText(code))")
    }

    /// Creates `path` as a directory (0700) if missing.
    static func makeDirectory(_ path: String) throws(JournalError) {
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw fail("cannot create journal directory", path) }
        var st = stat()
        guard stat(path, &st) == 0 else { throw fail("cannot read", path) }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw JournalError(.usage, "\(path) is not a directory") }
    }

    static func open(_ path: String, flags: Int32, mode: mode_t = 0o600) throws(JournalError) -> Int32 {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            if errno != EINTR { throw fail("cannot open", path) }
        }
    }

    /// Writes all of `bytes` at the file's position.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(JournalError) {
        try writeAll(fd, bytes, count: bytes.count, path: path)
    }

    /// Writes the first `count` bytes of `bytes`.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], count: Int, path: String) throws(JournalError) {
        let code: Int32 = bytes.withUnsafeBytes { all in
            let raw = UnsafeRawBufferPointer(rebasing: all[0..<count])
            var done = 0
            while done < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                if n > 0 { done += n; continue }
                if n < 0 && errno == EINTR { continue }
                return n == 0 ? ENOSPC : errno
            }
            return 0
        }
        if code != 0 { throw fail("cannot write", path, code) }
    }

    static func sync(_ fd: Int32, path: String) throws(JournalError) {
        if injectedFsyncFailure(path) { throw fail("cannot fsync", path, EIO) }
        while fsync(fd) != 0 {
            if errno != EINTR { throw fail("cannot fsync", path) }
        }
    }

    /// Fault injection for tests: the next `count` fsyncs of files under `directory` fail with EIO. A failing disk
    /// cannot be made for real here (no device-mapper in this kernel for dm-error or dm-flakey); the journal's
    /// handling of a failed fsync is what is tested.
    static func injectFsyncFailures(_ count: Int, under directory: String) {
        fsyncFailures.withLock { $0[directory + "/"] = count }
    }

    private static let fsyncFailures = Mutex<[String: Int]>([:])

    private static func injectedFsyncFailure(_ path: String) -> Bool {
        fsyncFailures.withLock { table in
            guard !table.isEmpty, let key = table.keys.first(where: { path.hasPrefix($0) }), let n = table[key], n > 0
            else { return false }
            table[key] = n - 1
            return true
        }
    }

    /// Makes a new or removed directory entry durable.
    static func syncDirectory(_ path: String) {
        guard let fd = try? open(path, flags: O_RDONLY | O_DIRECTORY) else { return }
        _ = fsync(fd)
        close(fd)
    }

    static func truncate(_ fd: Int32, to length: Int, path: String) throws(JournalError) {
        while ftruncate(fd, off_t(length)) != 0 {
            if errno != EINTR { throw fail("cannot truncate", path) }
        }
        _ = lseek(fd, off_t(length), SEEK_SET)
    }

    static func size(_ path: String) -> Int? {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : nil
    }

    static func modificationTime(_ path: String) -> Int? {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_mtim.tv_sec) : nil
    }

    /// The whole file.
    static func read(_ path: String) throws(JournalError) -> [UInt8] {
        let fd = try open(path, flags: O_RDONLY)
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 { out.append(contentsOf: chunk[0..<n]); continue }
            if n == 0 { return out }
            if errno != EINTR { throw fail("cannot read", path) }
        }
    }

    /// `length` bytes at `offset` (fewer at the end of the file).
    static func read(_ path: String, offset: Int, length: Int) throws(JournalError) -> [UInt8] {
        let fd = try open(path, flags: O_RDONLY)
        defer { close(fd) }
        var out = [UInt8](repeating: 0, count: length)
        var done = 0
        while done < length {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, length - done, off_t(offset + done)) }
            if n > 0 { done += n; continue }
            if n == 0 { break }
            if errno != EINTR { throw fail("cannot read", path) }
        }
        out.removeSubrange(done...)
        return out
    }

    /// Writes `bytes` to `path` atomically (temporary file, fsync, rename), 0600.
    static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws(JournalError) {
        let temporary = path + ".tmp"
        let fd = try open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC)
        do throws(JournalError) {
            try writeAll(fd, bytes, path: temporary)
            try sync(fd, path: temporary)
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let e = fail("cannot rename", temporary)
            unlink(temporary)
            throw e
        }
    }

    static func remove(_ path: String) { unlink(path) }

    static func list(_ directory: String) throws(JournalError) -> [String] {
        guard let dir = opendir(directory) else { throw fail("cannot list", directory) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// An exclusive advisory lock on `DIR/LOCK`, held while the descriptor is open: one writer per journal.
    static func lock(_ directory: String) throws(JournalError) -> Int32 {
        let path = directory + "/LOCK"
        let fd = try open(path, flags: O_RDWR | O_CREAT)
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            throw JournalError(.locked, "journal \(directory) is in use by another statetap process (\(path) is locked)")
        }
        return fd
    }
}
