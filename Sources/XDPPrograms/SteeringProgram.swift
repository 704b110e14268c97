// Loading statetap's steering XDP program and running it on frames (BPF_PROG_RUN). Cold code.
import CStatetapShims
import CXDP
import Foundation

/// An error from libbpf or the kernel, with what was being done.
public struct BPFError: Error, CustomStringConvertible {
    public let operation: String
    /// errno value (libbpf returns it negated; either sign is accepted).
    public let code: Int32
    /// What the verifier said when it rejected a program.
    public let verifierLog: String?

    public init(operation: String, code: Int32, verifierLog: String? = nil) {
        self.operation = operation
        self.code = code < 0 ? -code : code
        self.verifierLog = verifierLog
    }

    public var description: String {
        var s = "\(operation): \(String(cString: strerror(code))) (errno \(code))"
        if let verifierLog {
            s += "\nthe kernel's verifier rejected the program; its log:\n" + verifierLog
        }
        return s
    }
}

extension XDPPrograms {
    /// libbpf prints warnings (and the verifier's log, which statetap's errors already carry) to stderr by
    /// default; statetap keeps it quiet unless asked (`--log-level debug`).
    public static func setLibbpfMessages(enabled: Bool) {
        if enabled {
            _ = libbpf_set_print(libbpfToStderr)
        } else {
            _ = libbpf_set_print(nil)
        }
    }
}

private let libbpfToStderr: libbpf_print_fn_t = { _, format, args in
    guard let format, let args else { return 0 }
    return vdprintf(2, format, args)
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

/// A BPF object file opened with libbpf, its `.rodata` configuration written, loaded into the kernel with the
/// verifier's log kept for the error message.
final class LoadedObject {
    let object: OpaquePointer
    let file: String

    /// Opens `file`, writes `rodata` (the bytes of the program's `const volatile` configuration struct) and loads.
    init(file: String, rodata config: UnsafeRawBufferPointer, programName: String) throws {
        guard let obj = bpf_object__open_file(file, nil), libbpf_get_error(UnsafeRawPointer(obj)) == 0 else {
            let code = Int32(truncatingIfNeeded: errno)
            throw BPFError(operation: "open the BPF object \(file)", code: code == 0 ? EINVAL : code)
        }
        // Every stored property is set from here on: a throw runs deinit, which closes the object.
        object = obj
        self.file = file
        var rodata: OpaquePointer?
        var map = bpf_object__next_map(obj, nil)
        while let m = map {
            if String(cString: bpf_map__name(m)).hasSuffix(".rodata") { rodata = m }
            map = bpf_object__next_map(obj, m)
        }
        guard let rodata else {
            throw BPFError(operation: "\(file) has no .rodata (configuration) map", code: ENOENT)
        }
        var size = 0
        guard bpf_map__initial_value(rodata, &size) != nil, size == config.count else {
            throw BPFError(operation: "\(file): .rodata is \(size) bytes, not the \(config.count) of the configuration "
                           + "struct this statetap was built with", code: EINVAL)
        }
        let set = bpf_map__set_initial_value(rodata, config.baseAddress, size)
        guard set == 0 else {
            throw BPFError(operation: "write the configuration into \(file)", code: set)
        }
        guard let prog = bpf_object__find_program_by_name(obj, programName) else {
            throw BPFError(operation: "\(file) has no program named \(programName)", code: ENOENT)
        }
        // libbpf loads without a log first and, when the load fails, loads again at log level 1 into this
        // buffer: the verifier's reasons end up in the error.
        let logSize = 1 << 20
        let log = UnsafeMutablePointer<CChar>.allocate(capacity: logSize)
        defer { log.deallocate() }
        log.initialize(to: 0)
        bpf_program__set_log_buf(prog, log, logSize)
        let rc = bpf_object__load(obj)
        bpf_program__set_log_buf(prog, nil, 0)
        guard rc == 0 else {
            let text = String(cString: log).trimmingCharacters(in: .whitespacesAndNewlines)
            throw BPFError(operation: "load \(file)", code: rc, verifierLog: text.isEmpty ? nil : text)
        }
    }

    func programFD(_ name: String) throws -> Int32 {
        guard let prog = bpf_object__find_program_by_name(object, name) else {
            throw BPFError(operation: "\(file) has no program named \(name)", code: ENOENT)
        }
        return bpf_program__fd(prog)
    }

    func mapFD(_ name: String) throws -> Int32 {
        guard let map = bpf_object__find_map_by_name(object, name) else {
            throw BPFError(operation: "\(file) has no map named \(name)", code: ENOENT)
        }
        return bpf_map__fd(map)
    }

    deinit { bpf_object__close(object) }
}

/// The steering program loaded into the kernel (not attached to any interface).
public final class SteeringProgram {
    private let loaded: LoadedObject
    public let programFD: Int32
    private let countersFD: Int32
    /// The XSKMAP: rx queue id -> AF_XDP socket.
    public let socketsMapFD: Int32
    /// The object file it was loaded from.
    public var path: String { loaded.file }

    /// Opens `path` (default: the embedded steer.bpf.o), writes `configuration` into its .rodata and loads it.
    /// The verifier's log is part of the error when loading fails.
    public init(path: String? = nil, configuration: SteeringConfiguration = SteeringConfiguration()) throws {
        guard let file = path ?? XDPPrograms.objectPath(named: XDPPrograms.steerObjectName) else {
            throw BPFError(operation: "the embedded steer.bpf.o is missing", code: ENOENT)
        }
        var config = try configuration.cValue()
        loaded = try withUnsafeBytes(of: &config) {
            try LoadedObject(file: file, rodata: $0, programName: STATETAP_STEER_PROG_NAME)
        }
        programFD = try loaded.programFD(STATETAP_STEER_PROG_NAME)
        countersFD = try loaded.mapFD(STATETAP_COUNTERS_MAP_NAME)
        socketsMapFD = try loaded.mapFD(STATETAP_XSKS_MAP_NAME)
    }


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
