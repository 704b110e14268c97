import Rings
import ArgumentParser
import Pipeline

/// Pipeline tuning flags shared by `replay` and `demo` (and `capture` in the next issue).
struct PipelineOptions: ParsableArguments {
    @Option(help: "Decode workers; flows are sharded across them by a symmetric flow hash.")
    var workers: Int = 1

    @Option(help: "Slots in each source-to-worker ring (a power of two).")
    var ringSize: Int = 4096

    @Option(help: "Frames moved per ring operation.")
    var batch: Int = 64

    @Option(help: "Frame slots in the frame pool (bounds the frames in flight); for capture, UMEM frames per queue.")
    var frames: Int = 16384

    @Option(help: "Flows each worker tracks at most; the least recently used is evicted beyond (about 250 bytes a flow, measured: 62 MB a worker at the default; more with HTTP or TLS parser state).")
    var maxFlows: Int = 262_144

    @Option(help: "Devices whose flow totals (flows, packets, bytes) are kept; the least recently seen are evicted beyond, counted in devices_evicted (about 250 bytes a device: 62 MB at the default, measured). The state store's limit is --max-devices.")
    var maxFlowDevices: Int = 262_144

    @Option(help: "Seconds (capture time) after which an idle flow ends.")
    var flowTimeout: Double = 120

    @Option(help: "Megabytes each worker may hold for IP fragment reassembly.")
    var reassemblyMemory: Int = 32

    @Option(help: "Megabytes of out-of-order TCP data each worker may hold for the HTTP and TLS parsers.")
    var reassemblyMemcap: Int = 64

    @Option(help: "Seconds an incomplete IP datagram waits for its fragments.")
    var reassemblyTimeout: Double = 30

    @Option(name: .customLong("subscriber-prefix"),
            help: "Address prefix of the device side (repeatable), e.g. 10.45.0.0/16. Default: each flow's client is its device.")
    var subscriberPrefixes: [String] = []

    @Option(help: "CPUs to pin the source, workers and sink to, in that order, e.g. 0,1 (default: not pinned).")
    var cpus: String?

    /// Checked at parse time, so a bad flag gets its message with the command's usage.
    func validate() throws { _ = try makeConfiguration() }

    func makeConfiguration() throws -> PipelineConfiguration {
        var c = PipelineConfiguration()
        c.workers = workers
        c.ringSize = ringSize
        c.batchSize = batch
        c.frameCount = frames
        c.maxFlowsPerWorker = maxFlows
        c.maxDevices = maxFlowDevices
        guard flowTimeout > 0, flowTimeout <= 86_400 * 365 else {
            throw ValidationError("--flow-timeout must be > 0 and at most a year of seconds, got \(flowTimeout)")
        }
        c.flowIdleTimeoutNanoseconds = UInt64(flowTimeout * 1e9)
        guard reassemblyMemory >= 1, reassemblyMemory <= 1 << 20 else {
            throw ValidationError("--reassembly-memory must be 1...1048576 MB, got \(reassemblyMemory)")
        }
        c.reassemblyMemoryBytes = reassemblyMemory << 20
        guard reassemblyMemcap >= 1, reassemblyMemcap <= 1 << 20 else {
            throw ValidationError("--reassembly-memcap must be 1...1048576 MB, got \(reassemblyMemcap)")
        }
        c.tcpReassemblyMemcapBytes = reassemblyMemcap << 20
        guard reassemblyTimeout > 0, reassemblyTimeout <= 3600 else {
            throw ValidationError("--reassembly-timeout must be > 0 and at most 3600 seconds, got \(reassemblyTimeout)")
        }
        c.reassemblyTimeoutNanoseconds = UInt64(reassemblyTimeout * 1e9)
        for p in subscriberPrefixes {
            do { try c.subscribers.add(p) } catch { throw ValidationError(error.description) }
        }
        if let cpus {
            var list: [Int] = []
            for part in cpus.split(separator: ",") {
                guard let n = Int(part.trimmingCharacters(in: " ")), n >= 0 else {
                    throw ValidationError("--cpus takes a comma-separated list of CPU numbers, got '\(cpus)'")
                }
                list.append(n)
            }
            let allowed = allowedCPUCount()
            if let bad = list.first(where: { $0 >= allowed }) {
                throw ValidationError("--cpus: CPU \(bad) is not available (this process may use \(allowed) CPUs)")
            }
            c.cpus = list
        }
        do { try c.validate() } catch { throw ValidationError(error.message) }
        return c
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> Substring {
        var s = self
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return s
    }
}
