import Logging
import Migration
import Pipeline
import ServiceLifecycle

/// The capture's figures for `/metrics`.
public func captureSamples(_ s: LiveStatistics) -> [ServiceMetrics.Sample] {
    var out: [ServiceMetrics.Sample] = [
        .init("statetap_packets_decoded_total", .counter, Double(s.packetsDecoded)),
        .init("statetap_flow_devices", .gauge, Double(s.devices)),
        .init("statetap_flow_devices_evicted_total", .counter, Double(s.devicesEvicted)),
        .init("statetap_xdp_steered_total", .counter, Double(s.program.steered)),
        .init("statetap_xdp_passed_total", .counter, Double(s.program.passed)),
        .init("statetap_xdp_malformed_total", .counter, Double(s.program.malformed)),
        .init("statetap_xdp_no_socket_total", .counter, Double(s.program.noSocket)),
    ]
    for q in s.queues {
        let l = [("queue", String(q.queue))]
        out += [
            .init("statetap_rx_packets_total", .counter, Double(q.rxPackets), labels: l),
            .init("statetap_rx_bytes_total", .counter, Double(q.rxBytes), labels: l),
            .init("statetap_kernel_rx_dropped_total", .counter, Double(q.kernel.rxDropped), labels: l),
            .init("statetap_kernel_rx_ring_full_total", .counter, Double(q.kernel.rxRingFull), labels: l),
            .init("statetap_kernel_fill_ring_empty_total", .counter, Double(q.kernel.rxFillRingEmpty), labels: l),
            .init("statetap_kernel_rx_invalid_descs_total", .counter, Double(q.kernel.rxInvalidDescriptors), labels: l),
            .init("statetap_fill_shortages_total", .counter, Double(q.fillShortages), labels: l),
            .init("statetap_ring_full_drops_total", .counter, Double(q.ringFullDrops), labels: l),
        ]
    }
    return out
}

/// Runs the capture until it stops by itself or a signal asks: the service-lifecycle side of `capture`.
public struct CaptureService: Service {
    let capture: LivePipeline
    let statsInterval: Double
    let duration: Double?
    let log: Logger

    /// Runs `capture` until it stops, `duration` seconds pass, or a graceful shutdown; logs its statistics every
    /// `statsInterval` seconds (0: never).
    public init(capture: LivePipeline, statsInterval: Double, duration: Double?, log: Logger) {
        self.capture = capture
        self.statsInterval = statsInterval
        self.duration = duration
        self.log = log
    }

    public func run() async throws {
        capture.start()
        let start = ContinuousClock.now
        let deadline = duration.map { start + .milliseconds(Int64($0 * 1000)) }
        var nextStats = start + .milliseconds(Int64(max(statsInterval, 0.1) * 1000))
        var last = capture.statistics()
        await withGracefulShutdownHandler {
            while !capture.capturesFinished {
                try? await Task.sleep(for: .milliseconds(50))
                if Task.isCancelled { capture.stop() }
                let now = ContinuousClock.now
                if let deadline, now >= deadline, !capture.stopRequested {
                    log.info("--duration reached")
                    capture.stop()
                }
                if statsInterval > 0, now >= nextStats {
                    nextStats = now + .milliseconds(Int64(statsInterval * 1000))
                    let current = capture.statistics()
                    for line in LiveReport.statsLines(current, previous: last) { log.info("\(line)") }
                    last = current
                }
            }
        } onGracefulShutdown: {
            capture.stop()
        }
    }
}

/// The journal's and the state store's figures for `/metrics`.
public func journalSamples(_ journal: JournalSession) -> [ServiceMetrics.Sample] {
    let j = journal.writer.currentStats, s = journal.store.stats
    return [
        .init("statetap_journal_records_appended_total", .counter, Double(j.appended)),
        .init("statetap_journal_records_written_total", .counter, Double(j.written)),
        .init("statetap_journal_records_acknowledged_total", .counter, Double(j.acknowledged)),
        .init("statetap_journal_dropped_total", .counter, Double(j.droppedQueueFull), labels: [("reason", "queue_full")]),
        .init("statetap_journal_dropped_total", .counter, Double(j.droppedDiskFull), labels: [("reason", "disk_full")]),
        .init("statetap_journal_dropped_total", .counter, Double(j.droppedWriteError), labels: [("reason", "write_error")]),
        .init("statetap_journal_written_bytes_total", .counter, Double(j.compressedBytes)),
        .init("statetap_journal_raw_bytes_total", .counter, Double(j.rawBytes)),
        .init("statetap_journal_fsyncs_total", .counter, Double(j.fsyncs)),
        .init("statetap_journal_disk_full", .gauge, j.diskFull ? 1 : 0),
        .init("statetap_state_devices", .gauge, Double(s.devices)),
        .init("statetap_state_apps", .gauge, Double(s.apps)),
        .init("statetap_state_links", .gauge, Double(s.links)),
        .init("statetap_state_evictions_total", .counter, Double(s.devicesEvicted), labels: [("kind", "device")]),
        .init("statetap_state_evictions_total", .counter, Double(s.appsEvicted), labels: [("kind", "app")]),
        .init("statetap_state_evictions_total", .counter, Double(s.linksEvicted), labels: [("kind", "link")]),
    ]
}
