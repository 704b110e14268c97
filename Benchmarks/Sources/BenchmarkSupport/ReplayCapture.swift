import Decode
import PacketCraft
#if canImport(Glibc)
import Glibc
#endif

/// The capture file the replay benchmark reads: `SyntheticTraffic` (the same mix `statetap generate` writes) in
/// classic pcap, generated once and reused by later runs.
public enum ReplayCapture {
    /// Bump when the generator or the file layout changes, so a stale file is not reused.
    static let version = 1

    /// The path of the capture holding exactly `packets` packets of the default seed.
    public static func path(packets: Int, directory: String = "/tmp") -> String {
        "\(directory)/statetap-bench-\(packets)-v\(version).pcap"
    }

    /// Returns the path of a capture of exactly `packets` packets, writing it first when it does not exist. The
    /// file is written under a temporary name and renamed, so an interrupted run never leaves a short file behind.
    public static func ensure(packets: Int, directory: String = "/tmp") throws -> String {
        let path = path(packets: packets, directory: directory)
        if access(path, R_OK) == 0 { return path }
        let temporary = "\(path).\(getpid()).tmp"
        var traffic = SyntheticTraffic()
        let writer = try PcapWriter(path: temporary, linkType: .ethernet)
        var written = 0
        // The generator completes its last session; the file stops at `packets` so one file = a known count.
        try traffic.generate(packets: packets) { frame, ts in
            guard written < packets else { return }
            try writer.write(packet: frame, timestampNanoseconds: ts)
            written += 1
        }
        try writer.close()
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw CaptureWriterError(operation: "rename", path: path, code: code)
        }
        return path
    }
}
