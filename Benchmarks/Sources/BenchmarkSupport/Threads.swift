import CStatetapShims
#if canImport(Glibc)
import Glibc
#endif

/// Pins the calling thread to `cpu` (sched_setaffinity through statetap's C shim). False when the kernel refused,
/// e.g. because the CPU is not in this process's cpuset.
@discardableResult
public func pinCurrentThread(to cpu: Int) -> Bool {
    statetap_pin_current_thread(Int32(cpu)) == 0
}

/// CPUs this process may run on.
public func allowedCPUCount() -> Int { Int(statetap_allowed_cpu_count()) }

/// A joinable POSIX thread, pinned to one CPU before its body runs.
public final class PinnedThread {
    private final class Box {
        let body: @Sendable () -> Void
        let cpu: Int
        init(body: @escaping @Sendable () -> Void, cpu: Int) { self.body = body; self.cpu = cpu }
    }

    private var thread = pthread_t()
    private var joined = false

    /// Starts `body` on a new thread pinned to `cpu`.
    public init(cpu: Int, _ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(body: body, cpu: cpu)).toOpaque()
        let rc = pthread_create(&thread, nil, { arg in
            let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            pinCurrentThread(to: box.cpu)
            box.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
    }

    /// Waits for the thread to finish.
    public func join() {
        guard !joined else { return }
        pthread_join(thread, nil)
        joined = true
    }
}

/// Monotonic clock in nanoseconds.
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}
