// One AF_XDP socket on one rx queue, with its own UMEM: fill and rx rings through libxdp's xsk.h (whose
// static-inline ring helpers Swift imports and inlines). The capture thread of the queue alone touches the rings.
import CStatetapShims
import CXDP
import XDPPrograms
#if canImport(Glibc)
import Glibc
#endif

/// How AF_XDP binds to the queue.
public enum BindMode: String, Sendable, CaseIterable {
    /// Zero-copy when the driver supports it, else copy (and statetap says so).
    case auto
    /// The kernel copies each frame into the UMEM (works on every driver, veth included).
    case copy
    /// The NIC writes straight into the UMEM; fails on drivers without AF_XDP zero-copy (veth).
    case zerocopy
}

/// Sizes and options of each queue's socket.
public struct SocketConfiguration: Sendable {
    /// UMEM frame size: 2048 or 4096. The largest frame received is this minus the kernel's 256-byte headroom.
    public var frameSize = 2048
    /// UMEM frames per queue, `--frames` (rx ring + fill ring + frames in the pipeline must fit).
    public var frameCount = 16384
    /// Descriptors in the rx and fill rings (powers of two).
    public var rxRingSize = 8192
    public var fillRingSize = 8192
    public var bind = BindMode.auto
    /// Map the UMEM with huge pages (MAP_HUGETLB; needs reserved pages, see /proc/sys/vm/nr_hugepages).
    public var hugePages = false
    /// Busy polling: SO_PREFER_BUSY_POLL, SO_BUSY_POLL (microseconds) and SO_BUSY_POLL_BUDGET.
    public var busyPollMicroseconds: Int? = nil
    public var busyPollBudget = 64

    public init() {}

    public func validate() throws(CaptureError) {
        func bad(_ m: String) -> CaptureError { CaptureError(.invalidConfiguration, m) }
        guard frameSize == 2048 || frameSize == 4096 else { throw bad("--frame-size must be 2048 or 4096, got \(frameSize)") }
        for (name, v) in [("--rx-ring", rxRingSize), ("--fill-ring", fillRingSize)] {
            guard v >= 64, v <= 1 << 20, v & (v - 1) == 0 else {
                throw bad("\(name) must be a power of two in 64...1048576, got \(v)")
            }
        }
        guard frameCount >= fillRingSize + 64, frameCount <= 1 << 22 else {
            throw bad("--frames (UMEM frames per queue, \(frameCount)) must be at least the fill ring (\(fillRingSize)) + 64, and at most 4194304")
        }
        if let us = busyPollMicroseconds, us < 1 || us > 1_000_000 { throw bad("--busy-poll takes 1...1000000 microseconds") }
        if hugePages, (frameSize * frameCount) % (2 << 20) != 0 {
            throw bad("--huge-pages needs a UMEM that is a multiple of 2 MiB: --frames x --frame-size = \(frameSize * frameCount) bytes")
        }
    }
}

/// Kernel-side statistics of one socket (XDP_STATISTICS).
public struct SocketStatistics: Sendable {
    /// Dropped for other reasons (e.g. a frame larger than the UMEM frame).
    public var rxDropped: UInt64 = 0
    /// Dropped because the rx ring was full (statetap too slow).
    public var rxRingFull: UInt64 = 0
    /// Times the kernel found the fill ring empty (no frame to receive into).
    public var rxFillRingEmpty: UInt64 = 0
    /// Descriptors the kernel rejected.
    public var rxInvalidDescriptors: UInt64 = 0
    public init() {}
}

public final class XSKQueue: @unchecked Sendable {
    // @unchecked Sendable: created on the main thread, then used only by its capture thread; `statistics()` is a
    // system call on the fd, safe from any thread.
    public let queueID: UInt32
    public let configuration: SocketConfiguration
    /// The UMEM: `frameCount` frames of `frameSize` bytes.
    public let umemArea: UnsafeMutableRawPointer
    private let umemBytes: Int
    @usableFromInline let fill: UnsafeMutablePointer<xsk_ring_prod>
    private let completion: UnsafeMutablePointer<xsk_ring_cons>
    @usableFromInline let rx: UnsafeMutablePointer<xsk_ring_cons>
    private var umem: OpaquePointer?
    private var socket: OpaquePointer?
    public private(set) var fd: Int32 = -1
    /// Whether the kernel bound in zero-copy mode.
    public private(set) var zeroCopy = false
    /// Set when `--bind auto` wanted zero-copy and got copy: the reason.
    public private(set) var fallbackReason: String?
    /// The steering program's XSKMAP, where this socket is registered under its queue id.
    private let socketsMapFD: Int32
    private var registered = false

    /// Opens the socket on `queue` of `interface` and registers it in the steering program's XSKMAP.
    public init(interface: NetworkInterface, queue: UInt32, configuration c: SocketConfiguration,
                socketsMapFD: Int32) throws(CaptureError)
    {
        try c.validate()
        queueID = queue
        configuration = c
        self.socketsMapFD = socketsMapFD
        umemBytes = c.frameSize * c.frameCount
        var flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE
        if c.hugePages { flags |= MAP_HUGETLB }
        let area = mmap(nil, umemBytes, PROT_READ | PROT_WRITE, flags, -1, 0)
        guard let area, area != UnsafeMutableRawPointer(bitPattern: -1) else {
            let e = errno
            throw CaptureError(.memory, "could not map a \(umemBytes >> 20) MiB UMEM for queue \(queue)"
                               + (c.hugePages ? " with huge pages (reserve some: sysctl vm.nr_hugepages=N)" : "")
                               + ": \(String(cString: strerror(e)))")
        }
        umemArea = area
        fill = .allocate(capacity: 1)
        fill.initialize(to: xsk_ring_prod())
        completion = .allocate(capacity: 1)
        completion.initialize(to: xsk_ring_cons())
        rx = .allocate(capacity: 1)
        rx.initialize(to: xsk_ring_cons())

        var wantZeroCopy = c.bind != .copy
        var fallback: String?
        while true {
            do throws(CaptureError) {
                try open(interface: interface, zeroCopy: wantZeroCopy && c.bind != .copy)
                break
            } catch {
                // auto: zero-copy refused by the driver -> copy mode, and say why.
                // (A throw from here on runs deinit, which closes and unmaps.)
                guard c.bind == .auto, wantZeroCopy, error.kind == .zeroCopyUnsupported else { throw error }
                fallback = error.message
                wantZeroCopy = false
            }
        }
        fallbackReason = fallback
        fd = xsk_socket__fd(socket)
        zeroCopy = XSKSocketInfo.isZeroCopy(fd: fd)

        if let us = c.busyPollMicroseconds {
            for (opt, value) in [(SO_PREFER_BUSY_POLL, 1), (SO_BUSY_POLL, us), (SO_BUSY_POLL_BUDGET, c.busyPollBudget)] {
                var v = Int32(value)
                guard setsockopt(fd, SOL_SOCKET, opt, &v, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
                    let e = errno
                    throw CaptureError.system("set busy-poll socket option \(opt) on queue \(queue)", errno: e)
                }
            }
        }
        var key = queue
        var value = UInt32(bitPattern: fd)
        let rc = bpf_map_update_elem(socketsMapFD, &key, &value, 0)
        guard rc == 0 else {
            throw CaptureError.system("register the socket of queue \(queue) in the XDP program's XSKMAP", errno: rc)
        }
        registered = true
    }

    /// Removes the socket from the XSKMAP: from now on the program passes this queue's frames of interest to the
    /// kernel (counted `no_socket`) instead of into a ring nobody will read. Idempotent; capture thread or owner.
    public func unregister() {
        guard registered else { return }
        registered = false
        var key = queueID
        _ = bpf_map_delete_elem(socketsMapFD, &key)
    }

    private func open(interface: NetworkInterface, zeroCopy: Bool) throws(CaptureError) {
        close(keepMemory: true)
        var uc = xsk_umem_config(fill_size: UInt32(configuration.fillRingSize), comp_size: 64,
                                 frame_size: UInt32(configuration.frameSize), frame_headroom: 0, flags: 0)
        var u: OpaquePointer?
        var rc = xsk_umem__create(&u, umemArea, UInt64(umemBytes), fill, completion, &uc)
        guard rc == 0 else {
            let hint = -rc == ENOMEM || -rc == EPERM || -rc == ENOBUFS
                ? " (the UMEM is locked memory: try a smaller --frames, or raise RLIMIT_MEMLOCK / grant CAP_IPC_LOCK)" : ""
            throw CaptureError.system("register the UMEM of queue \(queueID)\(hint)", errno: rc)
        }
        umem = u
        var sc = xsk_socket_config()
        sc.rx_size = UInt32(configuration.rxRingSize)
        sc.tx_size = 0
        sc.libxdp_flags = UInt32(XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD)
        sc.bind_flags = UInt16(XDP_USE_NEED_WAKEUP) | UInt16(zeroCopy ? XDP_ZEROCOPY : XDP_COPY)
        var s: OpaquePointer?
        rc = xsk_socket__create(&s, interface.name, queueID, umem, rx, nil, &sc)
        guard rc == 0 else {
            let code = -rc
            if zeroCopy && (code == EOPNOTSUPP || code == EPROTONOSUPPORT) {
                throw CaptureError(.zeroCopyUnsupported,
                                   "zero-copy AF_XDP is not supported on \(interface.name) queue \(queueID) "
                                   + "(\(String(cString: strerror(code)))): its driver has no zero-copy support "
                                   + "(veth never has); use --bind copy or --bind auto")
            }
            if code == EBUSY {
                throw CaptureError(.programAttached,
                                   "queue \(queueID) of \(interface.name) already has an AF_XDP socket: another "
                                   + "statetap or AF_XDP program is capturing on it; stop it first")
            }
            throw CaptureError.system("create the AF_XDP socket on \(interface.name) queue \(queueID) "
                                      + (zeroCopy ? "(zero-copy mode)" : "(copy mode)"), errno: rc)
        }
        socket = s
    }

    private var memoryReleased = false

    /// Deletes the socket and the UMEM registration and, unless `keepMemory`, unmaps the memory (idempotent).
    private func close(keepMemory: Bool = false) {
        if let s = socket { xsk_socket__delete(s); socket = nil }
        if let u = umem { _ = xsk_umem__delete(u); umem = nil }
        guard !keepMemory, !memoryReleased else { return }
        memoryReleased = true
        munmap(umemArea, umemBytes)
        fill.deallocate()
        completion.deallocate()
        rx.deallocate()
    }

    deinit { close() }

    // MARK: hot path (capture thread only)

    /// Frames received and not yet taken: reserves up to `maxCount` descriptors starting at the returned index.
    @inlinable
    public func peekReceived(maxCount: UInt32, index: inout UInt32) -> UInt32 {
        xsk_ring_cons__peek(rx, maxCount, &index)
    }

    /// The descriptor at `index` (from `peekReceived`): its UMEM address and length.
    @inlinable
    public func descriptor(at index: UInt32) -> (address: UInt64, length: UInt32) {
        let d = xsk_ring_cons__rx_desc(rx, index)!
        return (d.pointee.addr, d.pointee.len)
    }

    /// Frames waiting in the rx ring (up to `limit`), without taking them.
    @inlinable
    public func receivedPending(limit: UInt32) -> UInt32 { xsk_cons_nb_avail(rx, limit) }

    /// Gives `count` peeked descriptors back to the kernel (their frames now belong to the caller).
    @inlinable
    public func releaseReceived(_ count: UInt32) { xsk_ring_cons__release(rx, count) }

    /// Free places in the fill ring (up to `wanted`).
    @inlinable
    public func fillRingFree(_ wanted: UInt32) -> UInt32 { xsk_prod_nb_free(fill, wanted) }

    /// Reserves `count` fill-ring places; returns the first index, or nil when fewer are free.
    @inlinable
    public func reserveFill(_ count: UInt32) -> UInt32? {
        var index: UInt32 = 0
        return xsk_ring_prod__reserve(fill, count, &index) == count ? index : nil
    }

    @inlinable
    public func setFill(at index: UInt32, address: UInt64) { xsk_ring_prod__fill_addr(fill, index).pointee = address }

    @inlinable
    public func submitFill(_ count: UInt32) { xsk_ring_prod__submit(fill, count) }

    /// Whether the kernel asked to be woken to process the fill ring (needs_wakeup).
    @inlinable
    public var fillNeedsWakeup: Bool { xsk_ring_prod__needs_wakeup(fill) != 0 }

    /// Kicks the kernel (needs_wakeup, or a busy-poll round).
    public func wake() { _ = recvfrom(fd, nil, 0, Int32(MSG_DONTWAIT), nil, nil) }

    /// Sleeps until frames arrive or `milliseconds` pass; true when the rx ring has frames.
    public func waitForFrames(milliseconds: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, milliseconds) > 0
    }

    /// XDP_STATISTICS of the socket.
    public func statistics() -> SocketStatistics {
        var s = xdp_statistics()
        var len = socklen_t(MemoryLayout<xdp_statistics>.size)
        var out = SocketStatistics()
        guard getsockopt(fd, SOL_XDP, XDP_STATISTICS, &s, &len) == 0 else { return out }
        out.rxDropped = s.rx_dropped
        out.rxRingFull = s.rx_ring_full
        out.rxFillRingEmpty = s.rx_fill_ring_empty_descs
        out.rxInvalidDescriptors = s.rx_invalid_descs
        return out
    }
}
