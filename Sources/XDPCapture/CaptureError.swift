#if canImport(Glibc)
import Glibc
#endif

/// Why live capture could not start (or stopped), with a message that says what to do.
public struct CaptureError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        case noSuchInterface = "no_such_interface"
        case permission = "permission"
        case queueOutOfRange = "queue_out_of_range"
        case zeroCopyUnsupported = "zero_copy_unsupported"
        case nativeXDPUnsupported = "native_xdp_unsupported"
        case verifierRejected = "verifier_rejected"
        case programAttached = "program_attached"
        case memory = "memory"
        case invalidConfiguration = "invalid_configuration"
        case system = "system"
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// What statetap needs when the kernel says EPERM.
    static let privilegesHint =
        "statetap capture needs root, or the capabilities CAP_BPF, CAP_NET_ADMIN and CAP_NET_RAW "
        + "(for example: sudo setcap cap_bpf,cap_net_admin,cap_net_raw,cap_ipc_lock+ep $(command -v statetap); "
        + "CAP_IPC_LOCK where the UMEM counts against RLIMIT_MEMLOCK, CAP_SYS_ADMIN for --force on a bpf_link)"

    /// A failed system or libbpf call: permission errors get the privileges hint.
    public static func system(_ what: String, errno code: Int32) -> CaptureError {
        let c = code < 0 ? -code : code
        let text = "\(what): \(String(cString: strerror(c))) (errno \(c))"
        if c == EPERM || c == EACCES { return CaptureError(.permission, text + ". " + privilegesHint) }
        return CaptureError(.system, text)
    }
}
