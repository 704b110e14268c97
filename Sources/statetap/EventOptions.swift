import Extract
import ArgumentParser
import Foundation
import Pipeline

/// `--events` and `--events-out`, shared by `replay` and `capture` (format: ../shared/EVENTS.md).
struct EventOptions: ParsableArguments {
    enum Format: String, ExpressibleByArgument, CaseIterable { case none, jsonl }

    @Option(help: "Write application-state events (server_name, web_link) as JSON Lines: none or jsonl.")
    var events: Format = .none

    @Option(help: "File for --events (default: standard output; the summary then goes to standard error).")
    var eventsOut: String?

    func validate() throws {
        if eventsOut != nil && events == .none { throw ValidationError("--events-out needs --events jsonl") }
    }

    /// Whether events take standard output (so the summary must not).
    var eventsOnStdout: Bool { events == .jsonl && eventsOut == nil }

    func makeWriter() throws -> EventWriter? {
        guard events == .jsonl else { return nil }
        return try EventWriter(path: eventsOut)
    }
}

/// Writes events, one JSON object a line. Used by the sink thread only (then closed by the main thread after the
/// pipeline is joined). Lines are encoded as bytes into one reused buffer, written out when it holds 64 KB.
final class EventWriter: @unchecked Sendable {
    private let file: UnsafeMutablePointer<FILE>
    private let owned: Bool
    private var buffer: [UInt8] = []
    private static let flushAt = 64 * 1024
    /// A terminal sees each event as it comes (live capture); files and pipes get 64 KB writes.
    private let lineByLine: Bool

    init(path: String?) throws {
        if let path {
            guard let f = fopen(path, "w") else {
                throw ValidationError("cannot write --events-out '\(path)': \(String(cString: strerror(errno)))")
            }
            file = f
            owned = true
        } else {
            file = fdopen(dup(1), "w")
            owned = true
        }
        buffer.reserveCapacity(Self.flushAt + 16 * 1024)
        lineByLine = isatty(fileno(file)) != 0
    }

    func write(_ e: StateEvent) {
        e.appendJSON(to: &buffer)
        buffer.append(0x0a)
        if buffer.count >= Self.flushAt || lineByLine { drain() }
    }

    private func drain() {
        buffer.withUnsafeBytes { _ = fwrite($0.baseAddress, 1, $0.count, file) }
        buffer.removeAll(keepingCapacity: true)
        if lineByLine { fflush(file) }
    }

    func close() {
        drain()
        fflush(file)
        if owned { fclose(file) }
    }
}
