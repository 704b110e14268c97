import CoreMetrics
import Metrics
import Prometheus
import Synchronization
import MigrationAPI

/// The metrics `GET /metrics` serves (Prometheus text format): the migrations', recorded through swift-metrics
/// into this registry, and figures the process hands in at each scrape (capture, pipeline, journal) through
/// `sample`: counters go up by the difference since the last scrape, gauges are set.
public final class ServiceMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let sampler: Mutex<Sampler>

    public enum Kind: Sendable { case counter, gauge }

    /// One figure of the process: a Prometheus name (`statetap_…`), its kind and value.
    public struct Sample: Sendable {
        public var name: String
        public var kind: Kind
        public var value: Double
        public var labels: [(String, String)]
        public var help: String

        public init(_ name: String, _ kind: Kind, _ value: Double, labels: [(String, String)] = [], help: String = "") {
            self.name = name
            self.kind = kind
            self.value = value
            self.labels = labels
            self.help = help
        }
    }

    private struct Sampler {
        var provider: (@Sendable () -> [Sample])?
        var last: [String: Double] = [:]
    }

    public init() {
        registry = PrometheusCollectorRegistry()
        factory = PrometheusMetricsFactory(registry: registry)
        sampler = Mutex(Sampler())
    }

    /// Figures read at every scrape.
    public func setProvider(_ provider: @escaping @Sendable () -> [Sample]) {
        sampler.withLock { $0.provider = provider }
    }

    func migrationStarted(source: String) {
        Counter(label: "statetap_migrations_started_total", dimensions: [("source", source)], factory: factory).increment()
    }

    func migrationFinished(status: String, signalToReadyMs: Double?) {
        Counter(label: "statetap_migrations_finished_total", dimensions: [("status", status)], factory: factory).increment()
        if let ms = signalToReadyMs {
            Metrics.Timer(label: "statetap_migration_signal_to_ready_seconds", factory: factory)
                .recordNanoseconds(Int64(ms * 1e6))
        }
    }

    func migrationRefused(reason: String) {
        Counter(label: "statetap_migrations_refused_total", dimensions: [("reason", reason)], factory: factory).increment()
    }

    func prefetched(objects: Int, bytes: Int, notModified: Int, failed: Int) {
        Counter(label: "statetap_agent_prefetched_objects_total", factory: factory).increment(by: objects)
        Counter(label: "statetap_agent_prefetched_bytes_total", factory: factory).increment(by: bytes)
        Counter(label: "statetap_agent_not_modified_total", factory: factory).increment(by: notModified)
        Counter(label: "statetap_agent_prefetch_failures_total", factory: factory).increment(by: failed)
    }

    func request(route: String, status: Int) {
        Counter(label: "statetap_api_requests_total", dimensions: [("route", route), ("status", String(status))],
                factory: factory).increment()
    }

    /// The text of `GET /metrics`.
    public func scrape() -> [UInt8] {
        // The process's figures, and the API server's connection limits (whichever server this process runs).
        let samples = (sampler.withLock { $0.provider?() } ?? []) + ConnectionStatistics.shared.samples()
        sampler.withLock { s in
            for sample in samples {
                let key = sample.name + sample.labels.map { "|\($0.0)=\($0.1)" }.joined()
                switch sample.kind {
                case .gauge:
                    let d = MetricNameDescriptor(metricName: sample.name, unitName: "", helpText: sample.help)
                    registry.makeGauge(descriptor: d, labels: sample.labels).set(sample.value)
                case .counter:
                    let base = sample.name.hasSuffix("_total") ? String(sample.name.dropLast(6)) : sample.name
                    let d = MetricNameDescriptor(metricName: base, unitName: "total", helpText: sample.help)
                    let delta = sample.value - (s.last[key] ?? 0)
                    let counter = registry.makeCounter(descriptor: d, labels: sample.labels)
                    if delta > 0 { counter.increment(by: delta) }
                    s.last[key] = max(sample.value, s.last[key] ?? 0)
                }
            }
        }
        var out: [UInt8] = []
        registry.emit(into: &out)
        return out
    }
}
