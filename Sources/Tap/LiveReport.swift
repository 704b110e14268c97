import Foundation
import Pipeline
import XDPCapture
import XDPPrograms

/// The live part of `capture`'s summary and its periodic statistics lines.
public struct LiveReport {
    public let setup: LiveSetup
    public let statistics: LiveStatistics

    public init(setup: LiveSetup, statistics: LiveStatistics) {
        self.setup = setup
        self.statistics = statistics
    }

    /// Ordered pairs for SummaryFormatter.
    public var object: [(String, Any)] {
        let p = statistics.program
        return [
            ("interface", setup.interface),
            ("xdp_mode", setup.xdpMode),
            ("af_xdp_mode", setup.zeroCopy ? "zerocopy" : "copy"),
            ("pipeline", setup.threading.rawValue),
            ("program", [("steered", p.steered), ("passed", p.passed), ("malformed", p.malformed),
                         ("no_socket", p.noSocket)] as [(String, Any)]),
            ("queues", statistics.queues.map { q -> (String, Any) in
                ("\(q.queue)", [
                    ("rx_packets", q.rxPackets), ("rx_bytes", q.rxBytes),
                    ("kernel_rx_dropped", q.kernel.rxDropped), ("kernel_rx_ring_full", q.kernel.rxRingFull),
                    ("kernel_fill_ring_empty", q.kernel.rxFillRingEmpty),
                    ("kernel_rx_invalid_descs", q.kernel.rxInvalidDescriptors),
                    ("ring_full_drops", q.ringFullDrops), ("empty_polls", q.emptyPolls),
                    ("fill_shortages", q.fillShortages),
                ] as [(String, Any)])
            }),
        ]
    }

    /// One line per queue, with rates since `previous`, and one for the program.
    public static func statsLines(_ s: LiveStatistics, previous: LiveStatistics) -> [String] {
        let dt = Double(s.elapsedNanoseconds &- previous.elapsedNanoseconds) / 1e9
        var lines: [String] = []
        for q in s.queues {
            let before = previous.queues.first { $0.queue == q.queue }
            let pps = dt > 0 ? Double(q.rxPackets &- (before?.rxPackets ?? 0)) / dt : 0
            let k = q.kernel
            lines.append("queue \(q.queue): rx \(q.rxPackets) packets \(q.rxBytes) bytes (\(Int(pps)) packets/s); "
                         + "kernel drops: rx_dropped \(k.rxDropped) rx_ring_full \(k.rxRingFull) "
                         + "fill_ring_empty \(k.rxFillRingEmpty) invalid_descs \(k.rxInvalidDescriptors); "
                         + "ring-full drops \(q.ringFullDrops); empty polls \(q.emptyPolls); "
                         + "fill shortages \(q.fillShortages)")
        }
        let p = s.program
        lines.append("xdp program: steered \(p.steered) passed \(p.passed) malformed \(p.malformed) "
                     + "no_socket \(p.noSocket); decoded \(s.packetsDecoded)")
        return lines
    }
}

/// CPU time this process used so far (user + system), in seconds.
public func processCPUSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
}
