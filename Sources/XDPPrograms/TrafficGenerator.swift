// The traffic generator: BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES sends frames out of an interface at millions
// of frames per second without a NIC, pktgen or an AF_XDP TX socket. Cold code apart from `send`.
import CStatetapShims
import CXDP
import Foundation

/// Sends frames out of one interface (a veth: they arrive on its peer, which must run an XDP program in native
/// mode, or the kernel drops them there).
public final class TrafficGenerator {
    private let loaded: LoadedObject
    private let programFD: Int32
    public let ifindex: UInt32
    /// Frames the kernel builds and redirects per batch (BPF_PROG_RUN's batch_size; the kernel's limit is 256).
    public var batchSize: UInt32 = 64

    /// Loads the generator program for `interface` (needs CAP_BPF and CAP_NET_ADMIN, in the interface's netns).
    public init(interface: String, objectPath: String? = nil) throws {
        let index = if_nametoindex(interface)
        guard index != 0 else {
            throw BPFError(operation: "no network interface named \(interface) in this network namespace", code: ENODEV)
        }
        ifindex = index
        guard let file = objectPath ?? XDPPrograms.objectPath(named: XDPPrograms.trafficgenObjectName) else {
            throw BPFError(operation: "the embedded trafficgen.bpf.o is missing", code: ENOENT)
        }
        var config = statetap_trafficgen_config(ifindex: index)
        loaded = try withUnsafeBytes(of: &config) {
            try LoadedObject(file: file, rodata: $0, programName: STATETAP_TRAFFICGEN_PROG_NAME)
        }
        programFD = try loaded.programFD(STATETAP_TRAFFICGEN_PROG_NAME)
    }

    /// Sends `frame` `count` times (one system call; the kernel repeats it). `frame` must be 14...3000 bytes.
    public func send(frame: UnsafeRawBufferPointer, count: UInt32) throws {
        guard count > 0 else { return }
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
