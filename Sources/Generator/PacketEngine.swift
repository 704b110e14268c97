// The AF_PACKET engine: a raw packet socket bound to the sending interface, PACKET_QDISC_BYPASS (frames go straight
// to the driver, as pktgen's do), sendmmsg in batches. Works wherever the interface is up; the slowest engine
// (one skb per frame, built by the kernel), but exact: a frame the driver refuses (a veth whose peer's ring is full
// answers ENOBUFS) is not taken, and the same frame is offered again, so order and count hold.
import CStatetapShims
#if canImport(Glibc)
import Glibc
#endif

final class PacketEngine: UserSpaceEngine {
    private let fd: Int32
    private let frames: FrameSet
    private let batchBases: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    private let batchLengths: UnsafeMutablePointer<UInt32>
    private let interface: String

    private let plan: SendPlan

    init(interface: String, ifindex: UInt32, frames: FrameSet, plan: SendPlan) throws(GeneratorError) {
        let rc = statetap_packet_socket_open(Int32(ifindex), 1)
        guard rc >= 0 else {
            throw GeneratorError("open an AF_PACKET socket (PACKET_QDISC_BYPASS) on \(interface)", code: rc)
        }
        fd = rc
        self.frames = frames
        self.interface = interface
        self.plan = plan
        batchBases = .allocate(capacity: 256)
        batchLengths = .allocate(capacity: 256)
    }

    deinit {
        close(fd)
        batchBases.deallocate()
        batchLengths.deallocate()
    }

    var resent: UInt64 { 0 }

    func send(from sequence: UInt64, count: Int) throws(GeneratorError) -> Int {
        let n = min(count, 256)
        for i in 0..<n {
            let f = plan.frameIndex(at: sequence + UInt64(i))
            batchBases[i] = frames.bases[f]
            batchLengths[i] = frames.lengths[f]
        }
        let rc = statetap_packet_send_batch(fd, batchBases, batchLengths, UInt32(n))
        if rc >= 0 { return Int(rc) }
        switch -rc {
        case ENOBUFS, EAGAIN: return 0  // the driver pushed back: offer the same frames again
        default: throw GeneratorError("send frames out of \(interface) (AF_PACKET)", code: rc)
        }
    }

    func finish(deadline: UInt64) throws(GeneratorError) {}
}
