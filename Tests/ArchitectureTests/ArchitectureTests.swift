import Foundation
import Testing

/// Keeps `docs/architecture.md` true: its table says what each module may import, in the data's order; this
/// checks `Package.swift`'s target dependencies and every `import` under `Sources/` against it.
@Suite("Architecture")
struct ArchitectureTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The table's rows, in order: module → the modules it may import.
    static func table() throws -> [(module: String, allowed: Set<String>)] {
        let doc = try String(contentsOf: root.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        guard let begin = doc.range(of: "<!-- architecture-table: begin -->"),
              let end = doc.range(of: "<!-- architecture-table: end -->") else {
            Issue.record("docs/architecture.md has no architecture-table markers")
            return []
        }
        var rows: [(String, Set<String>)] = []
        for line in doc[begin.upperBound..<end.lowerBound].split(separator: "\n") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count == 5, cells[1] != "module", !cells[1].hasPrefix("---") else { continue }
            let allowed = cells[3].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            rows.append((cells[1], Set(allowed.filter { !$0.isEmpty })))
        }
        return rows
    }

    /// Our C modules: the system libraries and the shims.
    static func cModules() throws -> Set<String> {
        let names = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("CModules").path)
        return Set(names)
    }

    /// Each target's dependencies on our own targets (products of other packages left out).
    static func packageDependencies() throws -> [String: Set<String>] {
        var text = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
        text = text.replacingOccurrences(of: #"\.product\([^)]*\)"#, with: "", options: .regularExpression)
        var result: [String: Set<String>] = [:]
        let target = try Regex(#"\.(?:target|executableTarget|testTarget)\(\s*name:\s*"([A-Za-z0-9_]+)"([^)]*)\)"#)
        for match in text.matches(of: target) {
            let name = String(match.output[1].substring ?? "")
            let rest = String(match.output[2].substring ?? "")
            guard let deps = rest.range(of: #"dependencies:\s*\[[^\]]*\]"#, options: .regularExpression) else {
                result[name] = []
                continue
            }
            let quoted = rest[deps].matches(of: try Regex(#""([A-Za-z0-9_]+)""#)).map { String($0.output[1].substring ?? "") }
            result[name] = Set(quoted)
        }
        return result
    }

    /// The modules imported by each Swift file of `Sources/<module>`.
    static func sourceImports(_ module: String) throws -> [String: Set<String>] {
        let dir = root.appendingPathComponent("Sources/\(module)")
        guard let files = FileManager.default.enumerator(atPath: dir.path) else { return [:] }
        let importLine = try Self.importLine()
        var result: [String: Set<String>] = [:]
        for case let file as String in files where file.hasSuffix(".swift") {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") {
                if let m = line.firstMatch(of: importLine) {
                    result[file, default: []].insert(String(m.output.1))
                }
            }
        }
        return result
    }

    /// An import line, any form (`import`, `@testable`, `@_exported`, `internal import`, `import struct M.T`…):
    /// the module is the capture.
    static func importLine() throws -> Regex<(Substring, Substring)> {
        try Regex(#"^\s*(?:@\w+\s+)*(?:(?:public|package|internal|private|fileprivate)\s+)?import\s+(?:(?:struct|class|enum|func|var|let|protocol|typealias)\s+)?([A-Za-z0-9_]+)"#)
    }

    @Test("the table lists every module under Sources/, and a row names only modules above it")
    func tableIsOrdered() throws {
        let rows = try Self.table()
        #expect(rows.count >= 10, "the table has \(rows.count) rows")
        let sources = try FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("Sources").path)
            .filter { !$0.hasPrefix(".") }
        let listed = Set(rows.map(\.module))
        for module in sources {
            #expect(listed.contains(module), "Sources/\(module) has no row in docs/architecture.md")
        }
        let c = try Self.cModules()
        var above = Set<String>()
        for row in rows {
            for dep in row.allowed where !c.contains(dep) {
                #expect(above.contains(dep), "\(row.module) may import \(dep), which is not above it in the table")
            }
            above.insert(row.module)
        }
    }

    @Test("Package.swift's target dependencies follow the table")
    func packageFollowsTable() throws {
        let rows = try Self.table()
        let deps = try Self.packageDependencies()
        let ours = Set(rows.map(\.module)).union(try Self.cModules())
        #expect(deps.count >= rows.count, "found \(deps.count) targets in Package.swift")
        for row in rows {
            guard let targetDeps = deps[row.module] else {
                Issue.record("\(row.module) is in the table but not a target in Package.swift")
                continue
            }
            for dep in targetDeps.intersection(ours).subtracting(row.allowed) {
                Issue.record("Package.swift: \(row.module) depends on \(dep), against docs/architecture.md")
            }
        }
    }

    @Test("every import under Sources/ follows the table")
    func importsFollowTable() throws {
        let rows = try Self.table()
        let ours = Set(rows.map(\.module)).union(try Self.cModules())
        var checked = 0
        for row in rows {
            for (file, imports) in try Self.sourceImports(row.module) {
                checked += 1
                for module in imports.intersection(ours).subtracting(row.allowed).subtracting([row.module]) {
                    Issue.record("Sources/\(row.module)/\(file) imports \(module), against docs/architecture.md")
                }
            }
        }
        #expect(checked > 50, "only \(checked) source files were read")
    }

    @Test("the checker itself sees a forbidden import")
    func checkerCatchesViolation() throws {
        // Journal may not import Pipeline; the same regex and table must say so for a line that does.
        let rows = try Self.table()
        let journal = try #require(rows.first { $0.module == "Journal" })
        #expect(!journal.allowed.contains("Pipeline"))
        let importLine = try Self.importLine()
        for line in ["import Pipeline", "@testable import Pipeline", "internal import Pipeline", "import struct Pipeline.X"] {
            let m = try #require(line.firstMatch(of: importLine), "\(line)")
            #expect(String(m.output.1) == "Pipeline", "\(line)")
        }
    }
}
