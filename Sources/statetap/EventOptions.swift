import Extract
import ArgumentParser
import Foundation
import Pipeline
import Tap

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
        do { return try EventWriter(path: eventsOut) } catch { throw ValidationError(error.description) }
    }
}

