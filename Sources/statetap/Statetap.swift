import ArgumentParser
import Logging

@main
struct Statetap: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "statetap",
        abstract: "Kernel-bypass packet pipeline that keeps mobile users' edge applications warm across edge nodes.",
        discussion: """
            statetap watches the traffic between devices and edge nodes (live with AF_XDP, or from capture files), \
            decodes it through a lock-free pipeline, and learns each device's application state.

            Live: `statetap capture --interface eth0` (root). Offline: `statetap replay FILE`.

            Start with `statetap demo`: it generates a capture of synthetic mobile-edge traffic and replays it.
            """,
        subcommands: [Replay.self, CaptureCommand.self, JournalCommand.self, StateCommand.self, Send.self, Generate.self,
                      Demo.self, AgentCommand.self, BenchMigration.self])
}

/// Options every command shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func bootstrap() -> Logger {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        return Logger(label: "statetap")
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
