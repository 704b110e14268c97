import CStatetapShims
#if canImport(Glibc)
import Glibc
#endif

/// A network interface of the current network namespace, as capture needs it.
public struct NetworkInterface: Sendable {
    public let name: String
    public let index: UInt32
    /// Receive queues the kernel exposes (/sys/class/net/NAME/queues/rx-N).
    public let rxQueueCount: Int

    public init(name: String) throws(CaptureError) {
        guard !name.isEmpty, name.utf8.count < Int(IF_NAMESIZE) else {
            throw CaptureError(.noSuchInterface, "'\(name)' is not a valid interface name")
        }
        let index = if_nametoindex(name)
        guard index != 0 else {
            throw CaptureError(.noSuchInterface,
                               "no network interface named '\(name)' in this network namespace (see `ip link`)")
        }
        self.name = name
        self.index = index
        var count = 0
        if let dir = opendir("/sys/class/net/\(name)/queues") {
            while let entry = readdir(dir) {
                let n = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if n.hasPrefix("rx-") { count += 1 }
            }
            closedir(dir)
        }
        rxQueueCount = max(count, 1)
    }

    /// Resolves a queue list: "all", "N", "N-M" or a comma-separated mix.
    public func queues(_ spec: String) throws(CaptureError) -> [UInt32] {
        let s = spec.trimmingCharacters(in: " ")
        if s == "all" { return (0..<UInt32(rxQueueCount)).map { $0 } }
        var out: [UInt32] = []
        for part in s.split(separator: ",") {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count), let lo = UInt32(bounds[0]),
                  let hi = bounds.count == 2 ? UInt32(bounds[1]) : lo, lo <= hi
            else {
                throw CaptureError(.invalidConfiguration,
                                   "--queues takes 'all', a queue number, a range like 0-3, or a list like 0,2; got '\(spec)'")
            }
            for q in lo...hi where !out.contains(q) {
                guard q < rxQueueCount else {
                    throw CaptureError(.queueOutOfRange,
                                       "queue \(q) is out of range: \(name) has \(rxQueueCount) rx queue"
                                       + (rxQueueCount == 1 ? " (0)" : "s (0-\(rxQueueCount - 1))")
                                       + "; see `ethtool -l \(name)`")
                }
                out.append(q)
            }
        }
        guard !out.isEmpty else { throw CaptureError(.invalidConfiguration, "--queues names no queue") }
        if let q = out.first(where: { $0 >= UInt32(STATETAP_XSKS_MAX_ENTRIES) }) {
            throw CaptureError(.queueOutOfRange,
                               "queue \(q): statetap's XDP program serves queues 0-\(STATETAP_XSKS_MAX_ENTRIES - 1)")
        }
        return out
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}
