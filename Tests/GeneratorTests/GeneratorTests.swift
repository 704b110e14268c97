@testable import Generator
import Testing

@Suite("Traffic generator: the plan's order and count, and pacing on a simulated clock")
struct GeneratorTests {
    @Test("run positions map to frames: each frame --repeat times in a row, the file again, --count cuts")
    func planOrder() {
        let cases: [(plan: SendPlan, expected: [Int])] = [
            (SendPlan(distinctFrames: 3, repeatCount: 1, loops: 2), [0, 1, 2, 0, 1, 2]),
            (SendPlan(distinctFrames: 2, repeatCount: 3, loops: 1), [0, 0, 0, 1, 1, 1]),
            (SendPlan(distinctFrames: 3, repeatCount: 2, loops: 1, count: 8), [0, 0, 1, 1, 2, 2, 0, 0]),
            (SendPlan(distinctFrames: 1, repeatCount: 1, loops: 1, count: 4), [0, 0, 0, 0]),
            (SendPlan(distinctFrames: 4, repeatCount: 1, loops: 1, count: 2), [0, 1]),
        ]
        for c in cases {
            #expect(c.plan.total == UInt64(c.expected.count))
            #expect((0..<c.plan.total).map { c.plan.frameIndex(at: $0) } == c.expected, "\(c.plan)")
        }
    }

    /// Drives a pacer on a simulated clock: a sender that sends everything allowed and sleeps exactly as told.
    private func simulate(rate: Double, frames: UInt64, batch: Int, sendCost: UInt64 = 0) -> (end: UInt64, largestBurst: Int) {
        var pacer = Pacer(rate: rate, maxBurst: UInt64(batch))
        var now: UInt64 = 1_000_000_000
        let start = now
        var sent: UInt64 = 0
        var largest = 0
        var steps = 0
        while sent < frames, steps < 10_000_000 {
            steps += 1
            let (n, wait) = pacer.allowance(sent: sent, limit: min(batch, Int(frames - sent)), now: now)
            if n == 0 { now += wait; continue }
            largest = max(largest, n)
            sent += UInt64(n)
            now += sendCost
        }
        return (now - start, largest)
    }

    @Test("--rate is exact: N frames at R/s take (N-1)/R, never less, in bursts no larger than a batch",
          arguments: [(1000.0, UInt64(1000)), (100_000, 50_000), (1_000_000, 200_000), (3, 10)])
    func pacedRate(rate: Double, frames: UInt64) {
        let (elapsed, burst) = simulate(rate: rate, frames: frames, batch: 64)
        let ideal = Double(frames - 1) / rate * 1e9
        #expect(Double(elapsed) >= ideal * 0.999, "sent too fast: \(elapsed) ns for \(frames) at \(rate)/s")
        #expect(Double(elapsed) <= ideal * 1.001 + 21_000, "sent too slowly: \(elapsed) ns vs \(ideal)")
        #expect(burst <= 64)
    }

    @Test("a sender slower than the rate is not made to flood: it catches up by one batch at most, then goes on")
    func lateSender() {
        // Each send costs 100 us; at 1 M/s asked, the sender can do at most 64 frames per 100 us (640 k/s).
        let (elapsed, burst) = simulate(rate: 1_000_000, frames: 64_000, batch: 64, sendCost: 100_000)
        #expect(burst <= 64)
        #expect(Double(elapsed) >= 64_000.0 / 640_000 * 1e9 * 0.99, "cannot beat its own cost")
    }

    @Test("at high rates frames go a few at a time (one system call for those due within 20 us), never early")
    func releases() {
        var pacer = Pacer(rate: 1_000_000, maxBurst: 64)
        var now: UInt64 = 1_000
        let first = pacer.allowance(sent: 0, limit: 64, now: now)
        #expect(first.count == 0 && first.waitNanoseconds == 19_000, "wait until 20 frames are due: \(first)")
        now += first.waitNanoseconds
        #expect(pacer.allowance(sent: 0, limit: 64, now: now).count == 20, "then those 20 go at once")
        // The run's last 3 frames go together once the last of them is due, not before.
        let last = pacer.allowance(sent: 20, limit: 3, now: now + 1_000)
        #expect(last.count == 0 && last.waitNanoseconds == 2_000, "\(last)")
        #expect(pacer.allowance(sent: 20, limit: 3, now: now + 3_000).count == 3)
    }

    @Test("unpaced: everything allowed at once")
    func unpaced() {
        var pacer = Pacer(rate: nil)
        #expect(pacer.allowance(sent: 0, limit: 256, now: 5).count == 256)
    }
}
