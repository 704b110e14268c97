import CStatetapShims
#if canImport(Glibc)
import Glibc
#endif

/// A joinable POSIX thread running a closure, optionally pinned to one CPU. (Foundation's Thread is not used on
/// the hot path, and it cannot pin.)
public final class PosixThread {
    private final class Box {
        let body: () -> Void
        let cpu: Int?
        let name: String
        init(body: @escaping () -> Void, cpu: Int?, name: String) { self.body = body; self.cpu = cpu; self.name = name }
    }

    private var thread = pthread_t()
    private var joined = false

    /// Starts `body` on a new thread named `name` (at most 15 characters are kept), pinned to `cpu` when given.
    public init(name: String, cpu: Int?, _ body: @escaping () -> Void) {
        let box = Unmanaged.passRetained(Box(body: body, cpu: cpu, name: name)).toOpaque()
        let rc = pthread_create(&thread, nil, { arg in
            let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            _ = prctlSetName(String(box.name.prefix(15)))
            if let cpu = box.cpu { pinCurrentThread(to: cpu) }
            box.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(String(cString: strerror(rc)))")
    }

    /// Waits for the thread to finish (once; later calls return at once).
    public func join() {
        guard !joined else { return }
        pthread_join(thread, nil)
        joined = true
    }
}

private func prctlSetName(_ name: String) -> Int32 {
    statetap_set_current_thread_name(name)
}

/// Pins the calling thread to `cpu`; false when the kernel refused (e.g. the CPU is not in our cpuset).
@discardableResult
public func pinCurrentThread(to cpu: Int) -> Bool {
    statetap_pin_current_thread(Int32(cpu)) == 0
}

/// CPUs this process may use.
public func allowedCPUCount() -> Int { Int(statetap_allowed_cpu_count()) }

/// Monotonic clock in nanoseconds.
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Wall-clock time in nanoseconds since the Unix epoch (event timestamps on live capture, control plane times).
@inline(__always)
public func realtimeNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Spin, then yield, then sleep: waiting without burning a core that another stage needs (2-core machines).
public struct Backoff {
    private var rounds = 0
    /// The sleep once spinning and yielding found nothing.
    private let sleepNanoseconds: Int
    public init(sleepNanoseconds: Int = 50_000) { self.sleepNanoseconds = sleepNanoseconds }
    public mutating func reset() { rounds = 0 }
    public mutating func wait() {
        rounds += 1
        if rounds < 16 {
            return
        } else if rounds < 64 {
            sched_yield()
        } else {
            var ts = timespec(tv_sec: 0, tv_nsec: sleepNanoseconds)
            nanosleep(&ts, nil)
        }
    }
}
