// Pacing for the engines that send from user space (AF_XDP TX, AF_PACKET): frame k of a run is due at
// start + k x interval, so the rate over any stretch of the run is the one asked for, not bursts and sleeps. A
// sender that fell behind catches up by at most `maxBurst` frames (as the live-frames XDP program does), then
// restarts the schedule from now: it never floods the receiver to make up for lost time.
#if canImport(Glibc)
import Glibc
#endif

/// Monotonic clock in nanoseconds.
@inlinable
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// How many frames may go now.
struct Pacer {
    /// Nanoseconds between frames; nil: unpaced.
    let interval: Double?
    let maxBurst: UInt64
    /// When frame `base` was due.
    private var start: UInt64 = 0
    private var base: UInt64 = 0
    private var started = false

    /// Frames released together when on schedule: as many as fall due in 20 us (at least 1, at most a burst), so
    /// a high rate costs one system call per few frames instead of one per frame, and the rate stays smooth at
    /// any scale a receiver can see (its rings hold thousands of frames).
    let minBurst: UInt64

    init(rate: Double?, maxBurst: UInt64 = 64) {
        interval = rate.map { 1e9 / $0 }
        self.maxBurst = maxBurst
        minBurst = rate.map { max(1, min(maxBurst, UInt64($0 * 20e-6))) } ?? 1
    }

    /// Frames that may be sent now (at most `limit`) when `sent` have been; when it is 0, the nanoseconds to wait.
    mutating func allowance(sent: UInt64, limit: Int, now: UInt64) -> (count: Int, waitNanoseconds: UInt64) {
        guard let interval else { return (limit, 0) }
        if !started { started = true; start = now; base = sent }
        let elapsed = Double(now &- start)
        let due = base + UInt64(elapsed / interval) + 1  // frames due by now, counted from the run's start
        let release = min(minBurst, UInt64(max(limit, 1)))  // the run's last frames: when the last of them is due
        if due < sent + release {
            // Wait for the frame that completes the next release.
            let next = Double(start) + Double(sent + release - 1 - base) * interval
            return (0, UInt64(max(next - Double(now), 1)))
        }
        if due - sent > maxBurst {
            // Behind by more than a burst: restart the schedule from now.
            start = now
            base = sent
            return (min(limit, 1), 0)
        }
        return (min(limit, Int(due - sent)), 0)
    }

    /// Sleeps for about `nanoseconds` (the last tens of microseconds spinning: nanosleep overshoots).
    static func wait(_ nanoseconds: UInt64) {
        let until = monotonicNanoseconds() &+ nanoseconds
        if nanoseconds > 100_000 {
            var ts = timespec(tv_sec: Int((nanoseconds - 60_000) / 1_000_000_000),
                              tv_nsec: Int((nanoseconds - 60_000) % 1_000_000_000))
            nanosleep(&ts, nil)
        }
        while monotonicNanoseconds() < until { sched_yield() }
    }
}
