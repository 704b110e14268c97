// The traffic generator: BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES sends frames out of an interface at millions
// of frames per second without a NIC, pktgen or an AF_XDP TX socket. Cold code: the kernel does the sending.
import CStatetapShims
import CXDP
import Foundation

/// Sends frames out of one interface (a veth: they arrive on its peer, which must run an XDP program in native
/// mode, or the kernel drops them there), optionally paced to an exact rate by the program itself.
public final class TrafficGenerator {
    private let loaded: LoadedObject
    private let programFD: Int32
    private let stateFD: Int32
    public let ifindex: UInt32
    /// Frames per second when paced (nil: as fast as the kernel goes).
    public let rate: Double?
    /// Frames the kernel builds per batch (BPF_PROG_RUN's batch_size; the kernel's limit is 256).
    public var batchSize: UInt32 = 64
    /// The highest rate of program runs per second seen (paced runs mostly drop; sizes the next call). The
    /// highest, not the last: a short call's time is mostly setup, and the estimate must not spiral down.
    private var runsPerSecond: Double = 5e6

    /// Loads the generator program for `interface` (needs CAP_BPF and CAP_NET_ADMIN, in the interface's netns).
    public init(interface: String, rate: Double? = nil, objectPath: String? = nil) throws {
        let index = if_nametoindex(interface)
        guard index != 0 else {
            throw BPFError(operation: "no network interface named \(interface) in this network namespace", code: ENODEV)
        }
        ifindex = index
        self.rate = rate
        guard let file = objectPath ?? XDPPrograms.objectPath(named: XDPPrograms.trafficgenObjectName) else {
            throw BPFError(operation: "the embedded trafficgen.bpf.o is missing", code: ENOENT)
        }
        var config = statetap_trafficgen_config()
        config.ifindex = index
        if let rate {
            guard rate >= 1, rate <= 1e9 else { throw BPFError(operation: "rate must be 1...1e9 frames/s", code: EINVAL) }
            config.interval_ns = UInt64((1e9 / rate).rounded())
        }
        loaded = try withUnsafeBytes(of: &config) {
            try LoadedObject(file: file, rodata: $0, programName: STATETAP_TRAFFICGEN_PROG_NAME)
        }
        programFD = try loaded.programFD(STATETAP_TRAFFICGEN_PROG_NAME)
        stateFD = try loaded.mapFD(STATETAP_TRAFFICGEN_STATE_MAP_NAME)
    }

    /// Frames sent so far.
    public func sent() throws -> UInt64 { try state().sent }

    private func state() throws -> statetap_trafficgen_state {
        var key: UInt32 = 0
        var s = statetap_trafficgen_state()
        let rc = bpf_map_lookup_elem(stateFD, &key, &s)
        guard rc == 0 else { throw BPFError(operation: "read the generator's state", code: rc) }
        return s
    }

    private func setLimit(_ limit: UInt64) throws {
        var key: UInt32 = 0
        var s = try state()
        s.limit = limit
        let rc = bpf_map_update_elem(stateFD, &key, &s, 0)
        guard rc == 0 else { throw BPFError(operation: "set the generator's limit", code: rc) }
    }

    /// Checks that the kernel allows live-frames runs here without sending anything: one run of a minimal frame
    /// while the limit equals what was sent, so the program drops it. Some kernels refuse live frames (EPERM even
    /// as root with every capability); this is how a caller learns it before choosing another engine.
    public func probe() throws {
        try setLimit(try sent())
        let frame = [UInt8](repeating: 0, count: 60)
        try frame.withUnsafeBytes { try run(frame: $0, repeat: 1) }
    }

    /// Sends `frame` `count` more times (paced when a rate was given). `frame` must be 14...3000 bytes.
    /// Each BPF_PROG_RUN call costs the kernel some milliseconds of setup: large counts amortize it.
    public func send(frame: UnsafeRawBufferPointer, count: UInt64) throws {
        guard count > 0 else { return }
        let target = try sent() + count
        try setLimit(target)
        var calls = 0
        while true {
            let have = try sent()
            if have >= target { return }
            calls += 1
            guard calls <= 1000 else {
                throw BPFError(operation: "the generator sent \(have) of \(target) frames after 1000 calls", code: EIO)
            }
            let remaining = Double(target - have)
            // Unpaced: every run sends. Paced: runs needed = time the remaining frames take x runs per second.
            let runs = rate.map { min(remaining / $0 * runsPerSecond * 1.2 + 64, 2e9) } ?? remaining
            let t0 = DispatchTime.now().uptimeNanoseconds
            try run(frame: frame, repeat: UInt32(min(runs, Double(Int32.max))))
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            if dt > 0.001 { runsPerSecond = max(runsPerSecond, min(runs, Double(Int32.max)) / dt) }
        }
    }

    private func run(frame: UnsafeRawBufferPointer, repeat count: UInt32) throws {
        var ctx = xdp_md()
        ctx.data_end = UInt32(frame.count)
        ctx.ingress_ifindex = ifindex
        var opts = bpf_test_run_opts()
        opts.sz = MemoryLayout<bpf_test_run_opts>.size
        opts.data_in = frame.baseAddress
        opts.data_size_in = UInt32(frame.count)
        opts.repeat = Int32(bitPattern: count)
        opts.flags = UInt32(BPF_F_TEST_XDP_LIVE_FRAMES)
        opts.batch_size = batchSize
        let rc = withUnsafeMutableBytes(of: &ctx) { c in
            opts.ctx_in = UnsafeRawPointer(c.baseAddress)
            opts.ctx_size_in = UInt32(c.count)
            return bpf_prog_test_run_opts(programFD, &opts)
        }
        guard rc == 0 else { throw BPFError(operation: "BPF_PROG_RUN (live frames) out of ifindex \(ifindex)", code: rc) }
    }
}
