// Loading statetap's steering XDP program and running it on frames (BPF_PROG_RUN). Cold code.
import CStatetapShims
import CXDP
import Foundation

/// An error from libbpf or the kernel, with what was being done.
public struct BPFError: Error, CustomStringConvertible {
    public let operation: String
    public let code: Int32
    public var description: String {
        "\(operation): \(String(cString: strerror(code < 0 ? -code : code))) (\(code < 0 ? -code : code))"
    }
}

/// Which frames the steering program sends to AF_XDP sockets.
public struct SteeringConfiguration: Sendable, Equatable {
    /// Every frame (ARP and the like included).
    public var steerAll = false
    /// UDP 2152 carrying GTP-U v1.
    public var steerGTPU = true
    /// IP fragments (their ports are only in the first fragment; the pipeline reassembles).
    public var steerFragments = true
    /// TCP ports of interest (either direction), at most `maxPorts`.
    public var tcpPorts: [UInt16] = [80, 8080, 443]
    /// UDP ports of interest (either direction), at most `maxPorts`.
    public var udpPorts: [UInt16] = [443]

    public static let maxPorts = Int(STATETAP_MAX_PORTS)

    public init() {}

    /// The struct the program reads from .rodata.
    func cValue() throws -> statetap_steer_config {
        guard tcpPorts.count <= Self.maxPorts, udpPorts.count <= Self.maxPorts else {
            throw BPFError(operation: "at most \(Self.maxPorts) TCP and \(Self.maxPorts) UDP ports can be steered",
                           code: EINVAL)
        }
        var c = statetap_steer_config()
        c.steer_all = steerAll ? 1 : 0
        c.steer_gtpu = steerGTPU ? 1 : 0
        c.steer_fragments = steerFragments ? 1 : 0
        withUnsafeMutableBytes(of: &c.tcp_ports) { raw in
            for (i, p) in tcpPorts.enumerated() { raw.storeBytes(of: p, toByteOffset: i * 2, as: UInt16.self) }
        }
        withUnsafeMutableBytes(of: &c.udp_ports) { raw in
            for (i, p) in udpPorts.enumerated() { raw.storeBytes(of: p, toByteOffset: i * 2, as: UInt16.self) }
        }
        return c
    }
}

/// Counters of the steering program, summed over CPUs (`enum statetap_xdp_counter`).
public struct SteeringCounters: Sendable, Equatable {
    public var steered: UInt64 = 0
    public var passed: UInt64 = 0
    public var malformed: UInt64 = 0
    public var noSocket: UInt64 = 0
    public init() {}
}

/// The steering program loaded into the kernel (not attached to any interface).
public final class SteeringProgram {
    private let object: OpaquePointer
    public let programFD: Int32
    private let countersFD: Int32

    /// Opens `path` (default: the embedded steer.bpf.o), writes `configuration` into its .rodata and loads it.
    /// The verifier's log is part of the error when loading fails.
    public init(path: String? = nil, configuration: SteeringConfiguration = SteeringConfiguration()) throws {
        guard let file = path ?? XDPPrograms.objectPath(named: XDPPrograms.steerObjectName) else {
            throw BPFError(operation: "the embedded steer.bpf.o is missing", code: ENOENT)
        }
        guard let obj = bpf_object__open_file(file, nil), libbpf_get_error(UnsafeRawPointer(obj)) == 0 else {
            throw BPFError(operation: "open \(file)", code: Int32(truncatingIfNeeded: errno))
        }
        object = obj
        var config = try configuration.cValue()
        var rodata: OpaquePointer?
        var map = bpf_object__next_map(obj, nil)
        while let m = map {
            if String(cString: bpf_map__name(m)).hasSuffix(".rodata") { rodata = m }
            map = bpf_object__next_map(obj, m)
        }
        guard let rodata else {
            bpf_object__close(obj)
            throw BPFError(operation: "\(file) has no .rodata (configuration) map", code: ENOENT)
        }
        var size = 0
        guard bpf_map__initial_value(rodata, &size) != nil, size == MemoryLayout<statetap_steer_config>.size else {
            bpf_object__close(obj)
            throw BPFError(operation: "\(file): .rodata is not a statetap_steer_config", code: EINVAL)
        }
        let set = withUnsafeBytes(of: &config) { bpf_map__set_initial_value(rodata, $0.baseAddress, size) }
        guard set == 0 else {
            bpf_object__close(obj)
            throw BPFError(operation: "write the configuration into \(file)", code: set)
        }
        let rc = bpf_object__load(obj)
        guard rc == 0 else {
            bpf_object__close(obj)
            throw BPFError(operation: "load \(file) (the verifier's log is printed above by libbpf)", code: rc)
        }
        guard let prog = bpf_object__find_program_by_name(obj, STATETAP_STEER_PROG_NAME),
              let counters = bpf_object__find_map_by_name(obj, STATETAP_COUNTERS_MAP_NAME)
        else {
            bpf_object__close(obj)
            throw BPFError(operation: "\(file) lacks \(STATETAP_STEER_PROG_NAME) or its counters", code: ENOENT)
        }
        programFD = bpf_program__fd(prog)
        countersFD = bpf_map__fd(counters)
    }

    deinit { bpf_object__close(object) }

    /// Runs the program once on `frame` (BPF_PROG_RUN, no interface involved, rx queue 0); returns the XDP action.
    public func run(frame: [UInt8]) throws -> UInt32 {
        var input = frame
        var opts = bpf_test_run_opts()
        opts.sz = MemoryLayout<bpf_test_run_opts>.size
        opts.repeat = 1
        let rc = input.withUnsafeMutableBytes { data in
            opts.data_in = UnsafeRawPointer(data.baseAddress)
            opts.data_size_in = UInt32(data.count)
            return bpf_prog_test_run_opts(programFD, &opts)
        }
        guard rc == 0 else { throw BPFError(operation: "BPF_PROG_RUN", code: rc) }
        return opts.retval
    }

    /// The program's counters, summed over every possible CPU.
    public func counters() throws -> SteeringCounters {
        let cpus = Int(libbpf_num_possible_cpus())
        guard cpus > 0 else { throw BPFError(operation: "count possible CPUs", code: Int32(-cpus)) }
        func read(_ index: statetap_xdp_counter) throws -> UInt64 {
            var key = UInt32(index.rawValue)
            var values = [UInt64](repeating: 0, count: cpus)
            let rc = bpf_map_lookup_elem(countersFD, &key, &values)
            guard rc == 0 else { throw BPFError(operation: "read counter \(index.rawValue)", code: rc) }
            return values.reduce(0, &+)
        }
        var c = SteeringCounters()
        c.steered = try read(STATETAP_CTR_STEERED)
        c.passed = try read(STATETAP_CTR_PASSED)
        c.malformed = try read(STATETAP_CTR_MALFORMED)
        c.noSocket = try read(STATETAP_CTR_NO_SOCKET)
        return c
    }
}
