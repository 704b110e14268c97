// The traffic generator: sends a capture's frames out of an interface (a veth: they arrive on its peer) with the
// fastest engine the kernel allows, exactly `--count` frames, optionally paced to an exact rate.
//
// Engines, fastest first (`auto` tries them in this order; measured rates: docs/capture.md, "Traffic generator"):
// - live-frames: BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES; the kernel builds the frames, an XDP program
//   redirects and paces them. Some kernels refuse it (EPERM even as root): then `auto` falls back.
// - xsk: a TX-only AF_XDP socket on the sending interface.
// - packet: an AF_PACKET socket with PACKET_QDISC_BYPASS and sendmmsg.
// Cold code, but the user-space engines' loop is allocation-free per frame.
import CStatetapShims
import XDPPrograms
#if canImport(Glibc)
import Glibc
#endif

/// A way of putting frames on the wire.
public enum GeneratorEngine: String, CaseIterable, Sendable {
    case liveFrames = "live-frames"
    case xsk
    case packet
}

/// The engines that send from user space, driven by one paced loop.
protocol UserSpaceEngine: AnyObject {
    /// Hands the frames at run positions sequence..<sequence+count to the kernel, as many as it takes now (0: it
    /// pushed back). Every frame taken goes out, even if the engine must send it again.
    func send(from sequence: UInt64, count: Int) throws(GeneratorError) -> Int
    /// Waits until every frame taken has gone out, until `deadline` (monotonic nanoseconds).
    func finish(deadline: UInt64) throws(GeneratorError)
    /// Frames the driver dropped that were sent again.
    var resent: UInt64 { get }
}

/// What a run did.
public struct SendResult: Sendable {
    public var engine: GeneratorEngine
    public var framesSent: UInt64
    public var seconds: Double
    /// Times the interface pushed back (AF_PACKET ENOBUFS, AF_XDP ring full) and the engine waited.
    public var backpressureWaits: UInt64
    /// Frames the driver dropped and the engine sent again (AF_XDP only).
    public var resent: UInt64
}

/// Sends a `SendPlan` of a `FrameSet` out of one interface with one engine, chosen when it is made.
public final class TrafficSender {
    private enum Backend {
        case live(TrafficGenerator)
        case userSpace(any UserSpaceEngine)
    }

    public let interface: String
    public let engine: GeneratorEngine
    /// Engines `auto` tried before `engine`, each with the reason it was not used.
    public let fallbacks: [(engine: GeneratorEngine, reason: String)]
    /// The AF_XDP engine's queue (nil for the others).
    public let queue: UInt32?
    private let backend: Backend
    private let frames: FrameSet
    private let plan: SendPlan
    private let rate: Double?
    private let batch: Int

    /// Prepares the engine: `engine` nil means auto (the fastest the kernel allows). `queue` (AF_XDP only): the TX
    /// queue, by default the CPU the caller runs on modulo the interface's queues, as the kernel picks for the
    /// others. Needs CAP_NET_RAW and, for live-frames and xsk, CAP_BPF/CAP_NET_ADMIN, in the interface's netns.
    public init(interface: String, engine wanted: GeneratorEngine?, frames: FrameSet, plan: SendPlan,
                rate: Double?, batch: Int, queue wantedQueue: UInt32? = nil, txQueues: UInt32 = 1) throws(GeneratorError) {
        let ifindex = if_nametoindex(interface)
        guard ifindex != 0 else {
            throw GeneratorError("no network interface named \(interface) in this network namespace", code: ENODEV)
        }
        self.interface = interface
        self.frames = frames
        self.plan = plan
        self.rate = rate
        self.batch = max(1, min(batch, 256))
        let q = wantedQueue ?? UInt32(max(statetap_current_cpu(), 0)) % max(txQueues, 1)
        var tried: [(GeneratorEngine, String)] = []
        let order: [GeneratorEngine] = wanted.map { [$0] } ?? GeneratorEngine.allCases
        var chosen: (GeneratorEngine, Backend)?
        for e in order {
            do throws(GeneratorError) {
                switch e {
                case .liveFrames:
                    let g: TrafficGenerator
                    do { g = try TrafficGenerator(interface: interface, rate: rate) } catch {
                        throw GeneratorError("\(error)")
                    }
                    g.batchSize = UInt32(self.batch)
                    do { try g.probe() } catch { throw GeneratorError("the kernel refused a live-frames BPF_PROG_RUN (\(error))") }
                    chosen = (e, .live(g))
                case .xsk:
                    chosen = (e, .userSpace(try XSKEngine(interface: interface, queue: q, frames: frames, plan: plan)))
                case .packet:
                    chosen = (e, .userSpace(try PacketEngine(interface: interface, ifindex: ifindex, frames: frames, plan: plan)))
                }
                break
            } catch {
                if wanted != nil { throw error }
                tried.append((e, error.description))
            }
            if chosen != nil { break }
        }
        guard let (e, b) = chosen else {
            throw GeneratorError("no engine could send on \(interface): " + tried.map { "\($0.0.rawValue): \($0.1)" }.joined(separator: "; "))
        }
        engine = e
        backend = b
        fallbacks = tried
        queue = e == .xsk ? q : nil
    }

    /// Sends the whole plan; `progress(sent)` is called about once a second.
    public func run(progress: (UInt64) -> Void = { _ in }) throws(GeneratorError) -> SendResult {
        let start = monotonicNanoseconds()
        var result = SendResult(engine: engine, framesSent: 0, seconds: 0, backpressureWaits: 0, resent: 0)
        switch backend {
        case .live(let g):
            do {
                // One BPF_PROG_RUN series per run of copies of one frame (each costs the kernel a setup).
                let first = try g.sent()
                var position: UInt64 = 0
                let total = plan.total
                var lastReport = start
                while position < total {
                    let copies = min(plan.repeatCount - position % plan.repeatCount, total - position)
                    try g.send(frame: frames.frame(plan.frameIndex(at: position)), count: copies)
                    position += copies
                    let now = monotonicNanoseconds()
                    if now - lastReport >= 1_000_000_000 { lastReport = now; progress(try g.sent() - first) }
                }
                result.framesSent = try g.sent() - first
            } catch { throw GeneratorError("\(error)") }
        case .userSpace(let u):
            try drive(u, into: &result, progress: progress)
        }
        result.seconds = Double(monotonicNanoseconds() - start) / 1e9
        return result
    }

    private func drive<E: UserSpaceEngine>(_ e: E, into result: inout SendResult,
                                          progress: (UInt64) -> Void) throws(GeneratorError) {
        var pacer = Pacer(rate: rate, maxBurst: UInt64(max(batch, 64)))
        let total = plan.total
        var sent: UInt64 = 0
        var backoff: UInt64 = 5_000
        var lastProgress = monotonicNanoseconds()
        var lastReport = lastProgress
        while sent < total {
            let now = monotonicNanoseconds()
            let (allowed, wait) = pacer.allowance(sent: sent, limit: Int(min(UInt64(batch), total - sent)), now: now)
            if allowed == 0 { Pacer.wait(wait); continue }
            let n = try e.send(from: sent, count: allowed)
            if n > 0 {
                sent += UInt64(n)
                lastProgress = now
                backoff = 5_000
            } else {
                result.backpressureWaits += 1
                guard now - lastProgress < 10_000_000_000 else {
                    throw GeneratorError("\(interface) took no frame for 10 s (\(sent) of \(total) sent): is its peer up?")
                }
                Pacer.wait(backoff)
                backoff = min(backoff * 2, 1_000_000)
            }
            if now - lastReport >= 1_000_000_000 { lastReport = now; progress(sent) }
        }
        try e.finish(deadline: monotonicNanoseconds() + 10_000_000_000)
        result.framesSent = sent
        result.resent = e.resent
    }
}
