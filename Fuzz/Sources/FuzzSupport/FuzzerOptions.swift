import Glibc

/// The harnesses' own command-line options, handled in `LLVMFuzzerInitialize` before libFuzzer reads its flags:
/// `--write-seeds=DIR` writes the seed inputs into DIR (created if missing), `--write-dict=FILE` writes the libFuzzer
/// dictionary (for `-dict=FILE`, empty when the harness has none); either makes the program exit after writing.
public enum FuzzerOptions {
    public static func handle(seeds: () -> [Seed], dictionary: [[UInt8]] = []) {
        if writeOutputs(seeds: seeds, dictionary: dictionary) { exit(0) }
    }

    /// True when an option was given. Everything allocated is freed on return, so LeakSanitizer stays quiet at exit.
    static func writeOutputs(seeds: () -> [Seed], dictionary: [[UInt8]]) -> Bool {
        var handled = false
        for argument in CommandLine.arguments {
            if let dir = argument.value(of: "--write-seeds=") {
                let all = seeds()
                for seed in all { writeFile(dir + "/" + seed.name, seed.bytes, creatingFolder: dir) }
                print("wrote \(all.count) seeds to \(dir)")
                handled = true
            } else if let file = argument.value(of: "--write-dict=") {
                writeFile(file, dictionary.flatMap { Array(dictionaryLine($0).utf8) + [10] })
                handled = true
            }
        }
        return handled
    }

    /// One dictionary entry in libFuzzer's format: a quoted string, bytes outside printable ASCII as `\xNN`.
    static func dictionaryLine(_ token: [UInt8]) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var line: [UInt8] = [34]
        for b in token {
            if b >= 32 && b < 127 && b != 34 && b != 92 {
                line.append(b)
            } else {
                line += [92, 120, digits[Int(b >> 4)], digits[Int(b & 15)]]
            }
        }
        line.append(34)
        return String(decoding: line, as: UTF8.self)
    }

    static func writeFile(_ path: String, _ bytes: [UInt8], creatingFolder folder: String? = nil) {
        if let folder {  // and its parents, as `mkdir -p`
            var partial = folder.hasPrefix("/") ? "" : "."
            for component in folder.split(separator: "/") {
                partial += "/" + component
                _ = mkdir(partial, 0o755)
            }
        }
        guard let f = fopen(path, "wb") else { fatalError("cannot write \(path): errno \(errno)") }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        guard written == bytes.count, fclose(f) == 0 else { fatalError("cannot write \(path): errno \(errno)") }
    }
}

/// A seed input: a file name (unique within the harness) and its bytes.
public struct Seed: Sendable {
    public var name: String
    public var bytes: [UInt8]
    public init(_ name: String, _ bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }
}

extension String {
    fileprivate func value(of prefix: String) -> String? {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : nil
    }
}
