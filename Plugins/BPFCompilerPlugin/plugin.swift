// BPFCompilerPlugin: compiles every `bpf/*.bpf.c` at the package root into an eBPF object file.
//
// One build command per source file. Each command runs
//
//   clang -target bpf -O2 -g -Wall -I<package>/bpf -I/usr/include/<multiarch> -c <file> -o <work>/<name>.bpf.o
//
// and lists the source plus every `bpf/*.h` as inputs, so editing a shared header rebuilds every object.
// The outputs are neither Swift nor C sources, so SwiftPM treats them as plugin-generated resources of the
// target the plugin is applied to (XDPPrograms), reachable at run time through `Bundle.module`.
import Foundation
import PackagePlugin

@main
struct BPFCompilerPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let bpfDirectory = context.package.directoryURL.appending(path: "bpf")
        let entries = try listDirectory(bpfDirectory)
        let sources = entries.filter { $0.lastPathComponent.hasSuffix(".bpf.c") }
        guard !sources.isEmpty else { return [] }
        // Every header in bpf/ is an input of every object: header edits must rebuild.
        let headers = entries.filter { $0.pathExtension == "h" }

        let clang = try context.tool(named: "clang").url
        var includeFlags = ["-I\(bpfDirectory.path(percentEncoded: false))"]
        if let multiarch = multiarchIncludeDirectory() {
            // Debian's <linux/types.h> includes <asm/types.h>, which lives only in the multiarch directory;
            // `-target bpf` does not add it to the search path.
            includeFlags.append("-I\(multiarch)")
        }

        return sources.map { source in
            let name = String(source.lastPathComponent.dropLast(".c".count))  // "steer.bpf"
            let output = context.pluginWorkDirectoryURL.appending(path: "\(name).o")
            let arguments = ["-target", "bpf", "-O2", "-g", "-Wall"] + includeFlags + [
                "-c", source.path(percentEncoded: false),
                "-o", output.path(percentEncoded: false),
            ]
            return .buildCommand(
                displayName: "Compiling BPF program \(source.lastPathComponent) for \(target.name)",
                executable: clang,
                arguments: arguments,
                inputFiles: [source] + headers,
                outputFiles: [output])
        }
    }

    /// Regular files directly inside `directory`, sorted by name so the command list is deterministic.
    private func listDirectory(_ directory: URL) throws -> [URL] {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: directory.path(percentEncoded: false), isDirectory: &isDirectory),
              isDirectory.boolValue
        else { return [] }
        return try fileManager
            .contentsOfDirectory(at: directory, includingPropertiesForKeys: nil, options: [.skipsHiddenFiles])
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    /// `/usr/include/<multiarch>` for the build host, preferring the plugin's own architecture and falling back
    /// to whichever known multiarch directory exists. `nil` if none does (non-Debian layouts).
    private func multiarchIncludeDirectory() -> String? {
        #if arch(arm64)
        let candidates = ["aarch64-linux-gnu", "x86_64-linux-gnu"]
        #else
        let candidates = ["x86_64-linux-gnu", "aarch64-linux-gnu"]
        #endif
        var isDirectory: ObjCBool = false
        for candidate in candidates {
            let path = "/usr/include/\(candidate)"
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                return path
            }
        }
        return nil
    }
}
