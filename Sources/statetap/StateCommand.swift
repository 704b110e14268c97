import ArgumentParser
import Foundation
import Journal

/// `statetap state show DEVICE --journal DIR`.
struct StateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state", abstract: "Query the per-device state store rebuilt from a journal.",
        subcommands: [Show.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One device's applications, server names and links, and its links ranked for pre-fetching.",
            discussion: """
                Applications are keyed by the serving edge proxy (or the server) and the host. Links are ranked \
                cacheable first, then by hits halved for every --half-life since their last use.
                """)
        @Argument(help: "The device (an IPv4 or IPv6 address).") var device: String
        @Option(help: "Journal directory.") var journal: String
        @Option(help: "Ranked links to print.") var links = 20
        @Option(help: "Half-life of a link's hits, in seconds, for the ranking.") var halfLife: Double = 3600
        @Flag(help: "Print the snapshot and the ranking as one JSON object.") var json = false

        func validate() throws {
            guard links >= 0 else { throw ValidationError("--links must be >= 0") }
            guard halfLife > 0 else { throw ValidationError("--half-life must be > 0") }
        }

        func run() throws {
            let address = try parseDevice(device)
            let store = StateStore(limits: { var l = StoreLimits(); l.maxDevices = 1; l.maxLinksPerApp = .max; return l }())
            let report = try openReader(journal).read(device: address) { store.apply($0) }
            for d in report.damages { FileHandle.standardError.write(Data("damage (skipped): \(d)\n".utf8)) }
            guard let snap = store.snapshot(device: address) else {
                FileHandle.standardError.write(Data("no state for \(device) in \(journal)\n".utf8))
                throw ExitCode(1)
            }
            let ranked = store.rankedLinks(device: address, halfLifeSeconds: halfLife, limit: links)
            if json {
                struct Output: Encodable { let snapshot: DeviceSnapshot; let ranked: [RankedLink] }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(Output(snapshot: snap, ranked: ranked)), as: UTF8.self))
                return
            }
            print("device \(snap.device): \(snap.events) events, \(isoTime(snap.firstSeen)) to \(isoTime(snap.lastSeen))")
            for app in snap.apps {
                var line = "  app \(app.key.endpoint) \(app.key.host): \(app.events) events, \(app.links.count) links"
                if !app.serverNames.isEmpty { line += ", server names \(app.serverNames.joined(separator: ","))" }
                if !app.alpn.isEmpty { line += ", ALPN \(app.alpn.joined(separator: ","))" }
                print(line)
            }
            print("ranked links (cacheable first, then recency x frequency):")
            for r in ranked {
                let c = r.link.cacheable.map { $0 ? "cacheable" : "not cacheable" } ?? "no response"
                print("  \(String(format: "%8.3f", r.score))  \(r.link.hits)x  \(r.link.status.map(String.init) ?? "-")  \(c)  \(r.link.url)")
            }
        }
    }
}
