import ArgumentParser
import Foundation
import Logging
import Migration
import Pipeline
import Tap
import ServiceLifecycle
import XDPCapture
import XDPPrograms

extension BindMode: ExpressibleByArgument {}
extension XDPMode: ExpressibleByArgument {}
extension LiveThreading: ExpressibleByArgument {}

struct CaptureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Capture live from an interface with AF_XDP and run the decode pipeline (needs root).",
        discussion: """
            statetap attaches its XDP program to the interface (through a bpf_link: the kernel removes it when \
            statetap exits, even after kill -9), steers the traffic of interest into one AF_XDP socket per rx \
            queue and passes everything else (ARP, ND, routing, management) to the kernel. Frames are decoded \
            where the kernel wrote them (the UMEM) and go back to the fill ring once processed.

            Stops on SIGINT or SIGTERM (Ctrl-C), after --count frames or after --duration seconds, then prints \
            the same summary as `replay` plus per-queue figures. Per-queue statistics go to standard error every \
            --stats-interval seconds: rx packets and bytes, the kernel's drops (XDP_STATISTICS: rx_dropped, \
            rx_ring_full, fill ring empty, invalid descriptors), pipeline ring-full drops, empty polls, fill \
            shortages and the XDP program's counters.

            Needs root, or CAP_BPF + CAP_NET_ADMIN + CAP_NET_RAW. On veth only copy mode exists (--bind auto \
            falls back and says so); frames sent into a veth by the peer's XDP need --xdp-mode native here.
            """)

    @Option(name: .shortAndLong, help: "Interface to capture on (see `ip link`).")
    var interface: String

    @Option(help: "Rx queues to capture: all, N, N-M or a list like 0,2 (one AF_XDP socket each).")
    var queues = "all"

    @Option(help: "AF_XDP bind mode: auto (zero-copy, else copy), copy, zerocopy.")
    var bind: BindMode = .auto

    @Option(help: "Where the XDP program runs: auto (native when the driver can), native, skb (generic).")
    var xdpMode: XDPMode = .auto

    @Option(name: .customLong("pipeline"),
            help: "inline: each queue's capture thread decodes its frames itself (default: fastest on few cores); threads: a capture thread and --workers decode threads per queue.")
    var threading: LiveThreading = .inline

    @Option(help: "Busy-poll the socket for this many microseconds (SO_PREFER_BUSY_POLL, SO_BUSY_POLL) instead of sleeping in poll().")
    var busyPoll: Int?

    @Option(help: "Packets per busy-poll round (SO_BUSY_POLL_BUDGET).")
    var busyPollBudget = 64

    @Option(help: "UMEM frame size, 2048 or 4096 bytes; the largest frame received is this minus 256.")
    var frameSize = 2048

    @Option(help: "Descriptors in each socket's rx ring (a power of two).")
    var rxRing = 8192

    @Option(help: "Descriptors in each socket's fill ring (a power of two).")
    var fillRing = 8192

    @Flag(help: "Map the UMEM with huge pages (reserve them first: sysctl vm.nr_hugepages).")
    var hugePages = false

    @Option(help: "What to steer to statetap: default (the ports below, GTP-U, fragments) or all (every frame).")
    var steer: SteerSelection = .default

    @Option(help: "TCP ports of interest, either direction (at most 8).")
    var tcpPorts = "80,8080,443"

    @Option(help: "UDP ports of interest, either direction (at most 8).")
    var udpPorts = "443"

    @Flag(inversion: .prefixedNo, help: "Steer GTP-U (UDP 2152).")
    var gtpu = true

    @Flag(inversion: .prefixedNo, help: "Steer IP fragments (their ports are only in the first one).")
    var fragments = true

    @Flag(help: "Replace an XDP program already attached to the interface (e.g. one a crashed tool left).")
    var force = false

    @Option(help: "Load this steering object instead of the embedded steer.bpf.o.")
    var bpfObject: String?

    @Option(help: "Seconds between per-queue statistics on standard error (0: only at exit).")
    var statsInterval: Double = 5

    @Option(help: "Stop after this many frames.")
    var count: UInt64?

    @Option(help: "Stop after this many seconds.")
    var duration: Double?

    @Option(help: "Also write every captured frame to this pcap file (slow; for debugging).")
    var writePcap: String?

    @Flag(help: "Print the summary as one JSON object.")
    var json = false

    @OptionGroup var pipeline: PipelineOptions
    @OptionGroup var eventOptions: EventOptions
    @OptionGroup(title: "HTTPS") var tls: TLSOptions
    @OptionGroup(title: "Journal") var journalOptions: JournalCLIOptions
    @OptionGroup(title: "Control plane") var control: ControlPlaneOptions
    @OptionGroup var global: GlobalOptions

    enum SteerSelection: String, ExpressibleByArgument, CaseIterable {
        case `default`, all
    }

    func validate() throws {
        try tls.validate(serving: control.serve != nil)
        _ = try makeLive()
        if let d = duration, !(d > 0) { throw ValidationError("--duration must be > 0 seconds") }
        if statsInterval < 0 { throw ValidationError("--stats-interval must be >= 0") }
        if count == 0 { throw ValidationError("--count must be at least 1") }
        if let b = bpfObject, !FileManager.default.isReadableFile(atPath: b) {
            throw ValidationError("cannot read --bpf-object '\(b)'")
        }
    }

    private func ports(_ spec: String, _ flag: String) throws -> [UInt16] {
        if spec.isEmpty || spec == "none" { return [] }
        var out: [UInt16] = []
        for p in spec.split(separator: ",") {
            guard let n = UInt16(p.trimmingCharacters(in: .whitespaces)), n > 0 else {
                throw ValidationError("\(flag) takes a comma-separated list of ports 1-65535, got '\(spec)'")
            }
            out.append(n)
        }
        guard out.count <= SteeringConfiguration.maxPorts else {
            throw ValidationError("\(flag): at most \(SteeringConfiguration.maxPorts) ports, got \(out.count)")
        }
        return out
    }

    func makeLive() throws -> LiveConfiguration {
        var live = LiveConfiguration(interface: interface)
        live.queues = queues
        live.socket.frameSize = frameSize
        live.socket.frameCount = pipeline.frames
        live.socket.rxRingSize = rxRing
        live.socket.fillRingSize = fillRing
        live.socket.bind = bind
        live.socket.hugePages = hugePages
        live.socket.busyPollMicroseconds = busyPoll
        live.socket.busyPollBudget = busyPollBudget
        do { try live.socket.validate() } catch { throw ValidationError(error.message) }
        live.xdpMode = xdpMode
        live.force = force
        live.bpfObject = bpfObject
        live.steering.steerAll = steer == .all
        live.steering.tcpPorts = try ports(tcpPorts, "--tcp-ports")
        live.steering.udpPorts = try ports(udpPorts, "--udp-ports")
        live.steering.steerGTPU = gtpu
        live.steering.steerFragments = fragments
        live.threading = threading
        live.packetLimit = count
        live.pcapPath = writePcap
        if threading == .inline && pipeline.workers != 1 {
            throw ValidationError("--pipeline inline runs one worker per queue on the capture thread; "
                                  + "use --pipeline threads for --workers \(pipeline.workers)")
        }
        return live
    }

    func run() async throws {
        let log = global.bootstrap()
        XDPPrograms.setLibbpfMessages(enabled: global.logLevel <= .debug)
        var configuration = try pipeline.makeConfiguration()
        let keys = try tls.make(&configuration, log: log)
        let live = try makeLive()
        let writer = try eventOptions.makeWriter()
        // Live: the journal never holds the pipeline back; what it cannot take is dropped and counted.
        let journal = try journalOptions.openSession(dropWhenFull: true, log: log)
        let plane: (ControlPlane, any Service)?
        do { plane = try control.make(journal: journal, tlsKeys: keys?.0, log: log) } catch {
            _ = journal?.finish()
            throw error
        }
        let capture: LivePipeline
        do {
            capture = try LivePipeline(configuration: configuration, live: live, onEvent: eventSink(writer, journal))
        } catch {
            log.error("\(error.message)")
            _ = journal?.finish()
            throw ExitCode(error.kind == .invalidConfiguration ? 64 : 1)
        }
        let s = capture.setup
        if let r = s.replaced { log.warning("--force: replaced \(r) on \(s.interface)") }
        for f in s.bindFallbacks { log.notice("--bind auto: \(f); using copy mode") }
        log.info("capturing on \(s.interface) queues \(s.queues.map(String.init).joined(separator: ",")): XDP \(s.xdpMode) mode, AF_XDP \(s.zeroCopy ? "zero-copy" : "copy") mode, pipeline \(s.threading.rawValue), program \(s.bpfObject)")

        let service = CaptureService(capture: capture, statsInterval: statsInterval, duration: duration, log: log)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: service, successTerminationBehavior: .gracefullyShutdownGroup),
        ]
        if let follower = keys?.1 { services.append(.init(service: follower)) }
        if let (controlPlane, server) = plane, let journal {
            controlPlane.metrics.setProvider { captureSamples(capture.statistics()) + journalSamples(journal) }
            services.append(.init(service: server))
        }
        let group = ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: log))
        // Whatever ends the group, the capture is stopped and the journal closed (migrations' last marks first).
        let ended = await Result { try await group.run() }
        plane?.0.shutdown()
        let (summary, stats) = capture.finish()
        writer?.close()
        for e in capture.pcapErrors { log.error("--write-pcap stopped early: \(e)") }
        log.info("stopped; the XDP program is detached from \(s.interface)")
        let report = LiveReport(setup: s, statistics: stats)
        let journalSection = journal?.finish()
        let text = json ? SummaryFormatter.json(summary, live: report, journal: journalSection)
            : SummaryFormatter.text(summary, live: report, journal: journalSection)
        if eventOptions.eventsOnStdout {
            FileHandle.standardError.write(Data((text + "\n").utf8))
        } else {
            print(text)
        }
        try ended.get()
    }
}

extension Result where Failure == any Error {
    /// The outcome of an async throwing call.
    init(_ body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

