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
    public static func objectPath(named name: String) -> String? {
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
