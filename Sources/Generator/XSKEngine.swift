// The AF_XDP TX engine: a TX-only AF_XDP socket on the sending interface (no XDP program needed there), its own
// UMEM of slots the frames are copied into, descriptors on the TX ring, sendto() to make the kernel transmit (in
// copy mode it builds an skb per frame inside that call), the completion ring to get slots back.
//
// Exactness: a driver that is busy (NETDEV_TX_BUSY) makes the kernel keep the descriptor and answer EAGAIN, so it
// goes out on the next call. A driver that drops (veth whose peer's ring is full: NET_XMIT_DROP) makes the kernel
// complete the descriptor unsent and answer EBUSY: the dropped one is the last the kernel consumed, so its frame
// is sent again (counted in `resent`; only then can order differ from the plan's).
import CXDP
import CStatetapShims
import XDPPrograms
#if canImport(Glibc)
import Glibc
#endif

final class XSKEngine: UserSpaceEngine {
    static let frameSize = 4096
    static let slots = 2048

    let queue: UInt32
    let zeroCopy: Bool
    private let interface: String
    private let frames: FrameSet
    private let area: UnsafeMutableRawPointer
    private let fill: UnsafeMutablePointer<xsk_ring_prod>
    private let completion: UnsafeMutablePointer<xsk_ring_cons>
    private let tx: UnsafeMutablePointer<xsk_ring_prod>
    private var umem: OpaquePointer?
    private var socket: OpaquePointer?
    private let fd: Int32
    /// Descriptors put on the TX ring and given back on the completion ring, since the start.
    private var submitted: UInt64 = 0
    private var completed: UInt64 = 0
    /// The run position of the frame in each TX ring entry (indexed by ring position & mask).
    private let sequenceOfEntry: UnsafeMutablePointer<UInt64>
    /// Positions dropped by the driver, to send again before new frames.
    private var dropped: [UInt64] = []
    private(set) var resent: UInt64 = 0

    private let plan: SendPlan

    init(interface: String, queue: UInt32, frames: FrameSet, plan: SendPlan) throws(GeneratorError) {
        guard frames.longest <= Self.frameSize else {
            throw GeneratorError("a frame of \(frames.longest) bytes does not fit the AF_XDP engine's \(Self.frameSize)-byte UMEM frames")
        }
        self.interface = interface
        self.frames = frames
        self.queue = queue
        self.plan = plan
        let bytes = Self.frameSize * Self.slots
        let m = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0)
        guard let m, m != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw GeneratorError("map the AF_XDP engine's \(bytes >> 20) MiB UMEM", code: errno)
        }
        area = m
        fill = .allocate(capacity: 1); fill.initialize(to: xsk_ring_prod())
        completion = .allocate(capacity: 1); completion.initialize(to: xsk_ring_cons())
        tx = .allocate(capacity: 1); tx.initialize(to: xsk_ring_prod())
        sequenceOfEntry = .allocate(capacity: Self.slots)
        sequenceOfEntry.initialize(repeating: 0, count: Self.slots)

        var uc = xsk_umem_config(fill_size: 64, comp_size: UInt32(Self.slots), frame_size: UInt32(Self.frameSize),
                                 frame_headroom: 0, flags: 0)
        var u: OpaquePointer?
        var rc = xsk_umem__create(&u, area, UInt64(bytes), fill, completion, &uc)
        guard rc == 0 else {
            Self.release(area, fill, completion, tx, sequenceOfEntry)
            throw GeneratorError("register the AF_XDP engine's UMEM", code: rc)
        }
        umem = u
        var sc = xsk_socket_config()
        sc.rx_size = 0
        sc.tx_size = UInt32(Self.slots)
        sc.libxdp_flags = UInt32(XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD)
        // No mode flag: zero-copy where the driver has it, copy otherwise (veth).
        sc.bind_flags = UInt16(XDP_USE_NEED_WAKEUP)
        var s: OpaquePointer?
        rc = xsk_socket__create(&s, interface, queue, u, nil, tx, &sc)
        guard rc == 0 else {
            _ = xsk_umem__delete(u)
            Self.release(area, fill, completion, tx, sequenceOfEntry)
            let busy = -rc == EBUSY ? " (another AF_XDP socket is bound to that queue)" : ""
            throw GeneratorError("create a TX AF_XDP socket on \(interface) queue \(queue)\(busy)", code: rc)
        }
        socket = s
        fd = xsk_socket__fd(s)
        zeroCopy = XSKSocketInfo.isZeroCopy(fd: fd)
    }

    private static func release(_ area: UnsafeMutableRawPointer, _ f: UnsafeMutablePointer<xsk_ring_prod>,
                                _ c: UnsafeMutablePointer<xsk_ring_cons>, _ t: UnsafeMutablePointer<xsk_ring_prod>,
                                _ s: UnsafeMutablePointer<UInt64>) {
        munmap(area, frameSize * slots)
        f.deallocate(); c.deallocate(); t.deallocate(); s.deallocate()
    }

    deinit {
        if let s = socket { xsk_socket__delete(s) }
        if let u = umem { _ = xsk_umem__delete(u) }
        Self.release(area, fill, completion, tx, sequenceOfEntry)
    }

    /// Takes back the slots of transmitted (or dropped) frames.
    private func reap() {
        var index: UInt32 = 0
        let n = xsk_ring_cons__peek(completion, UInt32(Self.slots), &index)
        if n > 0 {
            xsk_ring_cons__release(completion, n)
            completed += UInt64(n)
        }
    }

    /// Puts the frames at run positions `sequence(0..<count)` on the TX ring (as many as fit); returns how many.
    private func enqueue(count: Int, sequence: (Int) -> UInt64) -> Int {
        let free = Self.slots - Int(submitted - completed)
        let n = UInt32(min(count, free))
        guard n > 0 else { return 0 }
        var index: UInt32 = 0
        guard xsk_ring_prod__reserve(tx, n, &index) == n else { return 0 }
        for i in 0..<Int(n) {
            let seq = sequence(i)
            let frame = frames.frame(plan.frameIndex(at: seq))
            let slot = Int((submitted + UInt64(i)) & UInt64(Self.slots - 1))
            let address = UInt64(slot * Self.frameSize)
            (area + Int(address)).copyMemory(from: frame.baseAddress!, byteCount: frame.count)
            let d = xsk_ring_prod__tx_desc(tx, index &+ UInt32(i))!
            d.pointee.addr = address
            d.pointee.len = UInt32(frame.count)
            d.pointee.options = 0
            sequenceOfEntry[Int((index &+ UInt32(i)) & UInt32(Self.slots - 1))] = seq
        }
        xsk_ring_prod__submit(tx, n)
        submitted += UInt64(n)
        return Int(n)
    }

    /// Asks the kernel to transmit what is on the TX ring.
    private func kick() throws(GeneratorError) {
        let rc = sendto(fd, nil, 0, Int32(MSG_DONTWAIT), nil, 0)
        if rc >= 0 { return }
        let e = errno
        switch e {
        case EAGAIN, ENOBUFS, EINTR: return  // busy: the descriptors stay on the ring
        case EBUSY:
            // The driver dropped the last descriptor the kernel consumed: send its frame again. A plain read: the
            // kernel wrote the consumer index inside this thread's sendto, which has returned.
            let consumer = tx.pointee.consumer.pointee
            dropped.append(sequenceOfEntry[Int((consumer &- 1) & UInt32(Self.slots - 1))])
        default: throw GeneratorError("transmit on \(interface) queue \(queue) (AF_XDP)", code: e)
        }
    }

    func send(from sequence: UInt64, count: Int) throws(GeneratorError) -> Int {
        reap()
        resendDropped()
        let n = dropped.isEmpty ? enqueue(count: count, sequence: { sequence + UInt64($0) }) : 0
        if submitted > completed { try kick() }
        return n
    }

    private func resendDropped() {
        guard !dropped.isEmpty else { return }
        let again = dropped
        let n = enqueue(count: again.count, sequence: { again[$0] })
        dropped.removeFirst(n)
        resent += UInt64(n)
    }

    func finish(deadline: UInt64) throws(GeneratorError) {
        while true {
            reap()
            resendDropped()
            if completed == submitted && dropped.isEmpty { return }
            guard monotonicNanoseconds() < deadline else {
                throw GeneratorError("\(submitted - completed) frames still on \(interface)'s AF_XDP TX ring at the deadline: the interface stopped transmitting")
            }
            try kick()
            Pacer.wait(20_000)
        }
    }
}
