import Foundation
import Hummingbird
import Testing
@testable import Migration

/// One operation of docs/openapi.yaml.
struct DocumentedOperation: Hashable {
    var method: String
    var path: String
    var tags: Set<String>
    var statuses: Set<Int>
}

/// The operations under `paths:` of the document, read as plain text: a path is a two-space-indented key starting
/// with `/`, an operation a four-space-indented HTTP method under it, its `tags: [...]` and response codes
/// (`"NNN":`) are six and eight spaces in.
func documentedOperations(_ text: String) -> [DocumentedOperation] {
    let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]
    var out: [DocumentedOperation] = []
    var inPaths = false
    var path: String?
    func indent(_ line: Substring) -> Int { line.prefix { $0 == " " }.count }
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
        let level = indent(line)
        if level == 0 {
            inPaths = trimmed == "paths:"
            continue
        }
        guard inPaths else { continue }
        if level == 2 {
            path = trimmed.hasPrefix("/") && trimmed.hasSuffix(":") ? String(trimmed.dropLast()) : nil
        } else if level == 4, let path, trimmed.hasSuffix(":"), methods.contains(String(trimmed.dropLast())) {
            out.append(DocumentedOperation(method: trimmed.dropLast().uppercased(), path: path, tags: [], statuses: []))
        } else if level == 6, trimmed.hasPrefix("tags: ["), trimmed.hasSuffix("]"), !out.isEmpty, out.last!.path == path {
            let list = trimmed.dropFirst("tags: [".count).dropLast()
            out[out.count - 1].tags = Set(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        } else if level == 8, trimmed.hasPrefix("\""), let code = Int(trimmed.dropFirst().prefix(3)), !out.isEmpty,
                  out.last!.path == path
        {
            out[out.count - 1].statuses.insert(code)
        }
    }
    return out
}

/// The routes a router answers, as "METHOD /path/{param}".
func routes(_ router: Router<BasicRequestContext>) -> Set<String> {
    Set(router.routes.map { "\($0.method.rawValue) \($0.path.description)" })
}

@Suite("docs/openapi.yaml")
struct OpenAPITests {
    static let documentURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/openapi.yaml")

    func document() throws -> String { try String(contentsOf: Self.documentURL, encoding: .utf8) }

    @Test("documents exactly the routes of the control plane and of the agent")
    func routesMatch() throws {
        let ops = documentedOperations(try document())
        #expect(ops.count >= 10, "the paths: section was not read (\(ops.count) operations)")
        func documented(_ tag: String) -> Set<String> { Set(ops.filter { $0.tags.contains(tag) }.map { "\($0.method) \($0.path)" }) }
        let controlPlane = routes(makeControlPlane(agent: "http://127.0.0.1:9").router())
        let agent = routes(makeAgent(cache: "http://127.0.0.1:9").router())

        let cpDoc = documented("control-plane"), agentDoc = documented("agent")
        #expect(cpDoc.subtracting(controlPlane).sorted() == [], "documented for the control plane, not in ControlPlane.router()")
        #expect(controlPlane.subtracting(cpDoc).sorted() == [], "in ControlPlane.router(), not documented (tag control-plane)")
        #expect(agentDoc.subtracting(agent).sorted() == [], "documented for the agent, not in Agent.router()")
        #expect(agent.subtracting(agentDoc).sorted() == [], "in Agent.router(), not documented (tag agent)")
        let untagged = ops.filter { $0.tags.isDisjoint(with: ["control-plane", "agent"]) }.map { "\($0.method) \($0.path)" }
        #expect(untagged == [], "every operation says which server has it")
        #expect(Set(ops.map { "\($0.method) \($0.path)" }).count == ops.count, "an operation documented twice")
    }

    @Test("every operation answers 401 and documents only the API's status codes; the bearer scheme is declared")
    func statusesAndSecurity() throws {
        let text = try document()
        let allowed: Set<Int> = [200, 202, 204, 400, 401, 404, 409, 413, 415, 422]
        for op in documentedOperations(text) {
            #expect(op.statuses.contains(401), "\(op.method) \(op.path) does not document 401")
            #expect(op.statuses.isSubset(of: allowed), "\(op.method) \(op.path): \(op.statuses.subtracting(allowed).sorted())")
            #expect(op.statuses.contains { (200..<300).contains($0) }, "\(op.method) \(op.path) has no success status")
        }
        #expect(text.contains("openapi: 3.1"))
        #expect(text.contains("security:\n  - bearer: []"))
        #expect(text.contains("    bearer:\n      type: http\n      scheme: bearer"))
    }

    @Test("the plain-text reader finds paths, methods, tags and codes, and stops at the next top-level key")
    func readerItself() {
        let text = """
            openapi: 3.1.0
            paths:
              /a/{id}:
                parameters:
                  - { name: id, in: path }
                get:
                  tags: [agent]
                  responses:
                    "200": { description: ok }
                    "401": { $ref: "#/x" }
                delete:
                  tags: [control-plane, agent]
                  responses:
                    "204": { description: gone }
              /b:
                post:
                  responses:
                    "202":
                      description: yes
            components:
              /c:
                get:
                  tags: [agent]
            """
        let ops = documentedOperations(text)
        #expect(ops == [
            DocumentedOperation(method: "GET", path: "/a/{id}", tags: ["agent"], statuses: [200, 401]),
            DocumentedOperation(method: "DELETE", path: "/a/{id}", tags: ["control-plane", "agent"], statuses: [204]),
            DocumentedOperation(method: "POST", path: "/b", tags: [], statuses: [202]),
        ])
    }
}
