import ArgumentParser
import Capture
import Foundation
import Generator
import Logging
import XDPPrograms

struct Send: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send the frames of a capture file out of an interface, exact in count and rate (traffic generator, root).",
        discussion: """
            Made for veth pairs: the frames arrive on the peer. Frames are sent in file order, each --repeat \
            times in a row, the whole file --loops times (or exactly --count frames). With --rate the frames are \
            paced (frame k is due at start + k/rate: a smooth rate, not bursts and sleeps); a sender that falls \
            behind catches up by at most one batch. Ethernet captures only; frames under 14 bytes, over 3000 \
            bytes or longer than the interface's MTU allows are skipped (counted).

            Engines (--engine auto picks the first the kernel allows, and says at info level why it passed over \
            the others):
              live-frames  BPF_PROG_RUN with live frames: the kernel builds the frames, an XDP program redirects \
            and paces them; the fastest, but some kernels refuse it (EPERM even as root), and the peer must run \
            an XDP program in native mode (statetap capture --xdp-mode native) or the kernel drops the frames there.
              xsk          a TX-only AF_XDP socket on --interface (queue: --queue, else the CPU it runs on \
            modulo the interface's queues). A frame the driver drops is sent again (counted as resent).
              packet       an AF_PACKET socket with PACKET_QDISC_BYPASS and sendmmsg: works everywhere; a frame \
            the driver refuses is offered again, so count and order hold.
            Rates each engine reached here are in docs/capture.md ("Traffic generator").

            Make a capture with `statetap generate FILE`, or use any Ethernet pcap.
            """)

    @Option(name: .shortAndLong, help: "Interface to send out of (a veth: frames arrive on its peer).")
    var interface: String

    @Argument(help: "Capture file whose frames are sent (pcap or pcapng, Ethernet).")
    var file: String

    @Option(help: "Engine: auto, live-frames, xsk or packet.")
    var engine = "auto"

    @Option(help: "Copies of each frame sent in a row.")
    var `repeat`: UInt64 = 1

    @Option(help: "Times the whole file is sent.")
    var loops: UInt64?

    @Option(help: "Send exactly this many frames (the file, with --repeat, started again as often as needed); not with --loops.")
    var count: UInt64?

    @Option(help: "Frames per second at most (0: as fast as the engine goes).")
    var rate: Double = 0

    @Option(help: "Frames per batch: per BPF_PROG_RUN call (live-frames), per sendmmsg or TX kick (1-256).")
    var batch: UInt32 = 64

    @Option(help: "TX queue of the xsk engine (default: the CPU it runs on modulo the interface's TX queues).")
    var queue: UInt32?

    @Flag(help: "Print the result as one JSON object.")
    var json = false

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard engine == "auto" || GeneratorEngine(rawValue: engine) != nil else {
            throw ValidationError("--engine must be auto, live-frames, xsk or packet, got '\(engine)'")
        }
        guard (1...1 << 32).contains(Int(`repeat`)) else { throw ValidationError("--repeat must be 1...4294967296") }
        if let loops { guard loops >= 1 else { throw ValidationError("--loops must be at least 1") } }
        if let count { guard count >= 1 else { throw ValidationError("--count must be at least 1") } }
        guard loops == nil || count == nil else { throw ValidationError("--loops and --count exclude each other") }
        guard rate == 0 || (rate >= 1 && rate <= 1e9) else { throw ValidationError("--rate must be 0 (unpaced) or 1...1e9 frames/s") }
        guard (1...256).contains(batch) else { throw ValidationError("--batch must be 1...256") }
        guard FileManager.default.isReadableFile(atPath: file) else {
            throw ValidationError("cannot read capture file '\(file)'")
        }
    }

    func run() throws {
        let log = global.bootstrap()
        XDPPrograms.setLibbpfMessages(enabled: global.logLevel <= .debug)
        let reader = try CaptureFileReader(path: file)
        guard reader.linkType == .ethernet else {
            throw ValidationError("\(file) is \(reader.linkTypeName), not Ethernet: only Ethernet frames can be sent")
        }
        guard if_nametoindex(interface) != 0 else {
            throw ValidationError("no network interface named \(interface) in this network namespace")
        }
        let link = InterfaceFacts(name: interface)
        var frames: [[UInt8]] = []
        var skipped = 0
        loop: while true {
            switch reader.next() {
            case .end: break loop
            case .error(let m): throw ValidationError("\(file): \(m)")
            case .packet(let bytes, _, _):
                if bytes.count < 14 || bytes.count > min(3000, link.largestFrame(tagged: Self.isVLANTagged(bytes))) {
                    skipped += 1
                } else {
                    frames.append(Array(bytes))
                }
            }
        }
        guard !frames.isEmpty else { throw ValidationError("\(file) has no frame that can be sent") }
        if skipped > 0 { log.info("skipped \(skipped) frames: under 14 bytes, over 3000, or over \(interface)'s MTU (\(link.mtu))") }
        let set = FrameSet(frames)
        let plan = SendPlan(distinctFrames: frames.count, repeatCount: `repeat`, loops: loops ?? 1, count: count)
        let sender: TrafficSender
        do {
            sender = try TrafficSender(interface: interface, engine: GeneratorEngine(rawValue: engine), frames: set,
                                       plan: plan, rate: rate > 0 ? rate : nil, batch: Int(batch), queue: queue,
                                       txQueues: link.txQueues)
        } catch {
            log.error("\(error)")
            throw ExitCode(1)
        }
        for f in sender.fallbacks {
            log.info("send: not using the \(f.engine.rawValue) engine: \(f.reason)")
        }
        let queueNote = sender.queue.map { " (queue \($0))" } ?? ""
        let rateNote = rate > 0 ? " at \(Int(rate)) frames/s" : ""
        log.info("send: \(plan.total) frames out of \(interface) with the \(sender.engine.rawValue) engine\(queueNote)\(rateNote)")
        let result: SendResult
        do {
            result = try sender.run { sent in log.info("send: \(sent) of \(plan.total) frames sent") }
        } catch {
            log.error("\(error)")
            throw ExitCode(1)
        }
        let pps = result.seconds > 0 ? Double(result.framesSent) / result.seconds : 0
        if json {
            print("{\"engine\":\"\(result.engine.rawValue)\",\"frames_sent\":\(result.framesSent),"
                  + "\"distinct_frames\":\(frames.count),\"skipped\":\(skipped),"
                  + "\"seconds\":\((result.seconds * 1000).rounded() / 1000),\"frames_per_second\":\(Int(pps)),"
                  + "\"backpressure_waits\":\(result.backpressureWaits),\"resent\":\(result.resent)}")
        } else {
            print("sent \(result.framesSent) frames (\(frames.count) distinct, \(skipped) skipped) out of \(interface) "
                  + "with the \(result.engine.rawValue) engine in " + String(format: "%.3f s: %.0f frames/s", result.seconds, pps))
        }
    }

    /// An 802.1Q or 802.1ad tag after the MAC addresses: the kernel allows 4 bytes over the MTU for it.
    static func isVLANTagged(_ frame: UnsafeRawBufferPointer) -> Bool {
        let type = UInt16(frame[12]) << 8 | UInt16(frame[13])
        return type == 0x8100 || type == 0x88a8
    }
}

/// The sending interface's MTU and TX queues, from sysfs (of the netns the process runs in).
private struct InterfaceFacts {
    let mtu: Int
    let txQueues: UInt32

    init(name: String) {
        let base = "/sys/class/net/\(name)"
        mtu = (try? String(contentsOfFile: base + "/mtu", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 1500
        let queues = (try? FileManager.default.contentsOfDirectory(atPath: base + "/queues")) ?? []
        txQueues = UInt32(max(queues.filter { $0.hasPrefix("tx-") }.count, 1))
    }

    /// The longest frame the interface sends: MTU + Ethernet header (+ a VLAN tag).
    func largestFrame(tagged: Bool) -> Int { mtu + 14 + (tagged ? 4 : 0) }
}
