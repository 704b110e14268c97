// XDPPrograms: the compiled XDP objects (bpf/*.bpf.c, built by BPFCompilerPlugin) embedded as resources.
//
// Cold code: looked up once at attach time, so Foundation's Bundle is fine here.
import Foundation

public enum XDPPrograms {
    /// Resource name of the steering program (bpf/steer.bpf.c -> steer.bpf.o).
    public static let steerObjectName = "steer"
    /// Resource name of the traffic generator's program (bpf/trafficgen.bpf.c).
    public static let trafficgenObjectName = "trafficgen"

    /// Filesystem path of the embedded `<name>.bpf.o`, or `nil` if no such object was built into the bundle.
    ///
    /// Looked up first beside the running executable (SwiftPM puts `statetap_XDPPrograms.resources` there), found
    /// through /proc/self/exe: Foundation's `Bundle.main` traps when the executable's directory cannot be
    /// searched (an unprivileged user running a binary under a root-only directory), and such a user must get the
    /// "needs root" message, not a crash.
    public static func objectPath(named name: String) -> String? {
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let dir = (exe as NSString).deletingLastPathComponent
            let path = dir + "/statetap_XDPPrograms.resources/\(name).bpf.o"
            if access(dir, X_OK) != 0 { return path }  // cannot even look: the load reports the permission error
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        let bundle = Bundle.module
        if let url = bundle.url(forResource: "\(name).bpf", withExtension: "o") {
            return url.path(percentEncoded: false)
        }
        // Fallback in case the bundle's lookup treats the double extension differently.
        guard let resources = bundle.resourceURL else { return nil }
        let path = resources.appending(path: "\(name).bpf.o").path(percentEncoded: false)
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }
}

/// Runs `body` with a pointer to a C struct whose every byte is zero, padding included. libbpf's `*_opts` structs and
/// the kernel's info structs are checked for zero bytes past the fields a caller knows, and a Swift value does not
/// keep its padding (initializers and copies leave it undefined: in optimized builds the call then fails with
/// EINVAL), so such structs live in zeroed memory and are filled through the pointer.
@inlinable
public func withZeroedCStruct<T, R, E: Error>(_ type: T.Type, _ body: (UnsafeMutablePointer<T>) throws(E) -> R) throws(E) -> R {
    let raw = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.stride, alignment: MemoryLayout<T>.alignment)
    defer { raw.deallocate() }
    raw.initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<T>.stride)
    return try body(raw.assumingMemoryBound(to: T.self))
}
