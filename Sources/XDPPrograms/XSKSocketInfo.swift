import CXDP

#if canImport(Glibc)
import Glibc
#endif

/// What the kernel says of a bound AF_XDP socket (capture's and the generator's alike).
public enum XSKSocketInfo {
    /// Whether the socket `fd` runs in zero-copy mode (XDP_OPTIONS, Linux 5.3+); false when the kernel does not say.
    public static func isZeroCopy(fd: Int32) -> Bool {
        var options = xdp_options()
        var len = socklen_t(MemoryLayout<xdp_options>.size)
        return getsockopt(fd, SOL_XDP, XDP_OPTIONS, &options, &len) == 0
            && options.flags & UInt32(XDP_OPTIONS_ZEROCOPY) != 0
    }
}
