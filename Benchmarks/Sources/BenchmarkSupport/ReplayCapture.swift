import Capture
import Decode
import PacketCraft
#if canImport(Glibc)
import Glibc
#endif

/// The capture files the replay benchmarks read: `SyntheticTraffic` (the mixes `statetap generate --mix` writes)
/// in classic pcap, generated once and reused by later runs.
public enum ReplayCapture {
    /// Bump when the generator or the file layout changes, so a stale file is not reused.
    static let version = 1

    /// The path of the capture holding exactly `packets` packets of `mix` with the default seed. (The mixed
    /// capture keeps the name it had before there were mixes, so an existing file is reused.)
    public static func path(packets: Int, mix: SyntheticTraffic.Mix = .mixed, directory: String = "/tmp") -> String {
        mix == .mixed
            ? "\(directory)/statetap-bench-\(packets)-v\(version).pcap"
            : "\(directory)/statetap-bench-\(mix.rawValue)-\(packets)-v\(version).pcap"
    }

    /// Returns the path of a capture of exactly `packets` packets of `mix`, writing it first when it does not
    /// exist. The file is written under a temporary name and renamed, so an interrupted run never leaves a short
    /// file behind.
    public static func ensure(packets: Int, mix: SyntheticTraffic.Mix = .mixed, directory: String = "/tmp") throws
        -> String
    {
        let path = path(packets: packets, mix: mix, directory: directory)
        if access(path, R_OK) == 0 { return path }
        let temporary = "\(path).\(getpid()).tmp"
        var traffic = SyntheticTraffic(mix: mix)
        let writer = try PcapWriter(path: temporary, linkType: .ethernet)
        var written = 0
        // The generator completes its last session; the file stops at `packets` so one file = a known count
        // (the HTTP mix's last connection may then end without its last requests or its teardown).
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
