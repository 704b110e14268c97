// Attaching the steering program to an interface through a bpf_link: the kernel removes it when the last file
// descriptor closes, so a crashed statetap leaves nothing behind (a netlink attachment, like libxdp's, stays).
import CStatetapShims
import CXDP
import XDPPrograms
#if canImport(Glibc)
import Glibc
#endif

/// Where the XDP program runs.
public enum XDPMode: String, Sendable, CaseIterable {
    /// Native if the driver supports it, else generic (skb).
    case auto
    /// In the driver (veth, most NICs): fastest; frames redirected into a veth need it on the receiving side.
    case native
    /// Generic XDP after the skb is built: works on every interface, slower.
    case skb

    var flags: UInt32 {
        switch self {
        case .auto: 0
        case .native: UInt32(XDP_FLAGS_DRV_MODE)
        case .skb: UInt32(XDP_FLAGS_SKB_MODE)
        }
    }
}

/// An XDP program on an interface, as `bpf_xdp_query` reports it.
public struct AttachedProgram: Sendable, CustomStringConvertible {
    public let id: UInt32
    public let name: String
    public let mode: String
    /// The bpf_link holding it, if any (nil: attached through netlink, e.g. by libxdp or `ip link`).
    public let linkID: UInt32?

    public var description: String {
        "program id \(id) '\(name)' in \(mode) mode, attached " + (linkID.map { "by bpf_link \($0)" } ?? "through netlink")
    }

    /// What is attached to `ifindex` now; nil when nothing is.
    public static func query(ifindex: UInt32) -> AttachedProgram? {
        let opts = withZeroedCStruct(bpf_xdp_query_opts.self) { p -> bpf_xdp_query_opts? in
            p.pointee.sz = MemoryLayout<bpf_xdp_query_opts>.size
            return bpf_xdp_query(Int32(ifindex), 0, p) == 0 ? p.pointee : nil
        }
        guard let opts, opts.prog_id != 0 else { return nil }
        let mode = switch UInt32(opts.attach_mode) {
        case UInt32(XDP_ATTACHED_DRV): "native"
        case UInt32(XDP_ATTACHED_SKB): "skb"
        case UInt32(XDP_ATTACHED_HW): "offload"
        default: "several"
        }
        return AttachedProgram(id: opts.prog_id, name: programName(id: opts.prog_id), mode: mode,
                               linkID: xdpLinkID(ifindex: ifindex))
    }

    private static func programName(id: UInt32) -> String {
        let fd = bpf_prog_get_fd_by_id(id)
        guard fd >= 0 else { return "?" }
        defer { close(fd) }
        return withZeroedCStruct(bpf_prog_info.self) { info in
            var len = UInt32(MemoryLayout<bpf_prog_info>.size)
            guard bpf_obj_get_info_by_fd(fd, info, &len) == 0 else { return "?" }
            return withUnsafeBytes(of: info.pointee.name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
    }

    /// The id of the XDP bpf_link on `ifindex`, if one exists.
    static func xdpLinkID(ifindex: UInt32) -> UInt32? {
        var id: UInt32 = 0
        while bpf_link_get_next_id(id, &id) == 0 {
            let fd = bpf_link_get_fd_by_id(id)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            let found = withZeroedCStruct(bpf_link_info.self) { info in
                var len = UInt32(MemoryLayout<bpf_link_info>.size)
                return bpf_obj_get_info_by_fd(fd, info, &len) == 0 && info.pointee.type == BPF_LINK_TYPE_XDP.rawValue
                    && info.pointee.xdp.ifindex == ifindex
            }
            if found { return id }
        }
        return nil
    }
}

/// The steering program attached to an interface through a bpf_link. Detached by `detach()` or when the process
/// ends, however it ends.
public final class XDPAttachment: @unchecked Sendable {
    // @unchecked Sendable: `linkFD` changes only in `detach`, called once by the owner after capture stops.
    public let interface: NetworkInterface
    /// The mode the kernel runs the program in.
    public let mode: String
    /// What `--force` removed first, if anything.
    public let replaced: AttachedProgram?
    private var linkFD: Int32

    /// Makes sure no XDP program is on the interface: fails when one is, unless `force`, which removes it.
    /// Returns what was removed. Call before binding sockets, so the error names the real cause.
    public static func clear(_ interface: NetworkInterface, force: Bool) throws(CaptureError) -> AttachedProgram? {
        guard let existing = AttachedProgram.query(ifindex: interface.index) else { return nil }
        guard force else {
            throw CaptureError(.programAttached,
                               "\(interface.name) already has an XDP program (\(existing)); another statetap or XDP "
                               + "tool may be using it. Stop it, or pass --force to replace it")
        }
        try remove(existing, ifindex: interface.index)
        return existing
    }

    /// Attaches `programFD` to the interface; `replaced` is reported back as what `clear` removed.
    public init(programFD: Int32, interface: NetworkInterface, mode requested: XDPMode,
                replaced: AttachedProgram?) throws(CaptureError)
    {
        self.interface = interface
        self.replaced = replaced
        let fd = withZeroedCStruct(bpf_link_create_opts.self) { opts in
            opts.pointee.sz = MemoryLayout<bpf_link_create_opts>.size
            opts.pointee.flags = requested.flags
            return bpf_link_create(programFD, Int32(interface.index), BPF_XDP, opts)
        }
        guard fd >= 0 else {
            let code = -fd
            if code == EOPNOTSUPP || (code == EINVAL && requested == .native) {
                throw CaptureError(.nativeXDPUnsupported,
                                   "the driver of \(interface.name) cannot run XDP in native mode "
                                   + "(\(String(cString: strerror(code)))); use --xdp-mode skb or auto")
            }
            if code == EBUSY || code == EEXIST {
                let other = AttachedProgram.query(ifindex: interface.index).map { " (\($0))" } ?? ""
                throw CaptureError(.programAttached,
                                   "\(interface.name) got another XDP program\(other) while statetap was attaching; "
                                   + "retry, or pass --force")
            }
            throw CaptureError.system("attach the XDP program to \(interface.name) (\(requested.rawValue) mode)", errno: code)
        }
        linkFD = fd
        self.mode = AttachedProgram.query(ifindex: interface.index)?.mode ?? "unknown"
    }

    /// Removes a program someone else attached (`--force`).
    private static func remove(_ p: AttachedProgram, ifindex: UInt32) throws(CaptureError) {
        if let linkID = p.linkID {
            let fd = bpf_link_get_fd_by_id(linkID)
            guard fd >= 0 else { throw CaptureError.system("open bpf_link \(linkID) to detach it", errno: errno) }
            defer { close(fd) }
            let rc = bpf_link_detach(fd)
            guard rc == 0 else { throw CaptureError.system("detach bpf_link \(linkID) (--force)", errno: rc) }
        } else {
            let flags: UInt32 = p.mode == "skb" ? UInt32(XDP_FLAGS_SKB_MODE) : p.mode == "native" ? UInt32(XDP_FLAGS_DRV_MODE) : 0
            let rc = bpf_xdp_detach(Int32(ifindex), flags, nil)
            if rc == -EBUSY {
                throw CaptureError(.programAttached,
                                   "--force: program \(p.id) is held by a bpf_link (another live process); finding "
                                   + "and detaching a bpf_link needs CAP_SYS_ADMIN (root). Stop that process instead")
            }
            guard rc == 0 else { throw CaptureError.system("remove the XDP program \(p.id) (--force)", errno: rc) }
        }
    }

    /// Removes the program from the interface (idempotent).
    public func detach() {
        guard linkFD >= 0 else { return }
        // Detach explicitly (another process may hold a duplicate of the fd), then close.
        _ = bpf_link_detach(linkFD)
        close(linkFD)
        linkFD = -1
    }

    deinit { detach() }
}
