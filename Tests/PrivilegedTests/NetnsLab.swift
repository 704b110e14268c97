import Foundation
import Testing

/// The `statetap` binary built next to this test bundle.
let statetapBinary: String = {
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var dir = exe.deletingLastPathComponent()
    while !FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("statetap").path),
          dir.path != "/"
    {
        dir = dir.deletingLastPathComponent()
    }
    return dir.appendingPathComponent("statetap").path
}()

struct CommandResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// Runs a command to completion, bounded in time (killed and recorded as an issue past `timeout`).
@discardableResult
func sh(_ arguments: [String], timeout: Double = 60) throws -> CommandResult {
    let p = BackgroundProcess(arguments)
    try p.start()
    return p.wait(timeout: timeout)
}

/// A process whose output goes to temporary files (no pipe can fill up and block it).
final class BackgroundProcess {
    let arguments: [String]
    private let process = Process()
    private let outURL: URL
    private let errURL: URL

    init(_ arguments: [String]) {
        self.arguments = arguments
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("statetap-test-\(UUID().uuidString)")
        outURL = base.appendingPathExtension("out")
        errURL = base.appendingPathExtension("err")
    }

    func start() throws {
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: arguments[0].hasPrefix("/") ? arguments[0] : "/usr/bin/env")
        process.arguments = arguments[0].hasPrefix("/") ? Array(arguments.dropFirst()) : arguments
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var stderrSoFar: String { (try? String(contentsOf: errURL, encoding: .utf8)) ?? "" }
    var stdoutSoFar: String { (try? String(contentsOf: outURL, encoding: .utf8)) ?? "" }

    func signal(_ sig: Int32) { if process.isRunning { kill(process.processIdentifier, sig) } }

    /// Waits at most `timeout` seconds, then kills it (recorded as an issue unless `expectKill`).
    func wait(timeout: Double, expectKill: Bool = false) -> CommandResult {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            if !expectKill { Issue.record("\(arguments.joined(separator: " ")) did not finish in \(timeout) s; killed") }
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        let out = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
        return CommandResult(status: process.terminationStatus, stdout: out, stderr: err)
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
}

/// Two network namespaces joined by a veth pair (one queue each): `a` (10.77.N.1) sends, `b` (10.77.N.2)
/// captures. Removed by `remove()` or deinit, whatever the test did (deleting a namespace deletes its veth end,
/// and with it any XDP program).
final class VethLab {
    nonisolated(unsafe) private static var counter = 0
    let nsA: String
    let nsB: String
    let ifA = "sta0"
    let ifB = "stb0"
    let addressA: String
    let addressB: String
    private var removed = false

    /// `queues`: rx/tx queues of each veth end (frames a peer's XDP sends arrive on queue CPU % queues).
    init(queues: Int = 1) throws {
        Self.counter += 1
        let tag = "\(getpid() % 100000)-\(Self.counter)"
        nsA = "statetap-t\(tag)-a"
        nsB = "statetap-t\(tag)-b"
        let subnet = 10 + Self.counter % 200
        addressA = "10.77.\(subnet).1"
        addressB = "10.77.\(subnet).2"
        let steps: [[String]] = [
            ["ip", "netns", "add", nsA],
            ["ip", "netns", "add", nsB],
            ["ip", "link", "add", ifA, "numrxqueues", "\(queues)", "numtxqueues", "\(queues)", "netns", nsA, "type",
             "veth", "peer", "name", ifB, "numrxqueues", "\(queues)", "numtxqueues", "\(queues)", "netns", nsB],
            ["ip", "-n", nsA, "addr", "add", "\(addressA)/24", "dev", ifA],
            ["ip", "-n", nsB, "addr", "add", "\(addressB)/24", "dev", ifB],
            ["ip", "-n", nsA, "link", "set", ifA, "up"],
            ["ip", "-n", nsB, "link", "set", ifB, "up"],
            ["ip", "-n", nsA, "link", "set", "lo", "up"],
            ["ip", "-n", nsB, "link", "set", "lo", "up"],
        ]
        for step in steps {
            let r = try sh(step, timeout: 10)
            guard r.status == 0 else {
                remove()
                throw LabError(message: "\(step.joined(separator: " ")) failed: \(r.stderr)")
            }
        }
    }

    struct LabError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// `statetap ARGS` run inside namespace `ns`, in the background.
    func statetap(in ns: String, _ args: [String]) throws -> BackgroundProcess {
        let p = BackgroundProcess(["ip", "netns", "exec", ns, statetapBinary] + args)
        try p.start()
        return p
    }

    /// Runs `statetap ARGS` inside `ns` to completion.
    func statetapRun(in ns: String, _ args: [String], timeout: Double = 60) throws -> CommandResult {
        try sh(["ip", "netns", "exec", ns, statetapBinary] + args, timeout: timeout)
    }

    /// Whether an XDP program is attached to `ifB` (`ip -d link` shows `prog/xdp`).
    func xdpAttached() throws -> Bool {
        try sh(["ip", "-n", nsB, "-d", "link", "show", ifB], timeout: 10).stdout.contains("prog/xdp")
    }

    /// Waits (bounded) until a capture started on `ifB` reports it is capturing, or the process ended.
    func waitUntilCapturing(_ p: BackgroundProcess, timeout: Double = 30) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if p.stderrSoFar.contains("capturing on") { return true }
            if !p.isRunning { return false }
            usleep(50_000)
        }
        return false
    }

    func remove() {
        guard !removed else { return }
        removed = true
        _ = try? sh(["ip", "netns", "del", nsA], timeout: 10)
        _ = try? sh(["ip", "netns", "del", nsB], timeout: 10)
    }

    deinit { remove() }
}
