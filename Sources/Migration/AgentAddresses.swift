import Decode
import Glibc
import MigrationAPI
import NIOPosix

/// Why the agent URL `text` may not be used under `policy`; nil when it may. A host given by name is resolved
/// and every address it resolves to must pass: a name that points at a metadata service or outside the agent
/// networks is refused as its address would be. Blocks while the name resolves: `agentProblem` runs it off the
/// event loops.
public func agentProblemResolving(_ text: String, policy: AgentPolicy) -> String? {
    let url = URLParts(text)
    if let problem = policy.problem(url: url) { return problem }
    guard IPAddress(url.host) == nil else { return nil }
    switch resolveHost(url.host) {
    case .failure(let failure): return "\(quoted(url.host)) could not be resolved: \(failure.message)"
    case .success(let addresses):
        for address in addresses {
            if let problem = policy.problem(address: address, host: url.host) { return problem }
        }
        return nil
    }
}

/// `agentProblemResolving` on NIO's blocking-work pool.
public func agentProblem(_ text: String, policy: AgentPolicy) async -> String? {
    do {
        return try await NIOThreadPool.singleton.runIfActive { agentProblemResolving(text, policy: policy) }
    } catch {
        return "\(quoted(text)) could not be checked: \(error)"
    }
}

/// Every problem of an edges file under `policy`: `problems(agents:)`, then each agent host given by name
/// resolved and checked. Empty when the file is usable.
public func edgeConfigurationProblems(_ configuration: EdgeConfiguration, policy: AgentPolicy) -> [String] {
    var out = configuration.problems(agents: policy)
    guard out.isEmpty else { return out }
    for edge in configuration.edges {
        if let p = agentProblemResolving(edge.agent, policy: policy) { out.append("edge \(quoted(edge.name)): agent \(p)") }
    }
    return out
}

struct ResolveFailure: Error {
    let message: String
}

/// The addresses `host` resolves to (getaddrinfo, TCP), in its order, duplicates dropped.
func resolveHost(_ host: String) -> Result<[IPAddress], ResolveFailure> {
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var list: UnsafeMutablePointer<addrinfo>?
    let rc = getaddrinfo(host, nil, &hints, &list)
    guard rc == 0 else { return .failure(ResolveFailure(message: String(cString: gai_strerror(rc)))) }
    defer { freeaddrinfo(list) }
    var out: [IPAddress] = []
    var node = list
    while let info = node?.pointee {
        defer { node = info.ai_next }
        guard let sa = info.ai_addr else { continue }
        var address: IPAddress?
        if info.ai_family == AF_INET {
            let v4 = UnsafeRawPointer(sa).load(as: sockaddr_in.self)
            address = IPAddress(ipv4: UInt32(bigEndian: v4.sin_addr.s_addr))
        } else if info.ai_family == AF_INET6 {
            let v6 = UnsafeRawPointer(sa).load(as: sockaddr_in6.self)
            let bytes = withUnsafeBytes(of: v6.sin6_addr) { Array($0) }
            var high: UInt64 = 0, low: UInt64 = 0
            for i in 0..<8 { high = high << 8 | UInt64(bytes[i]) }
            for i in 8..<16 { low = low << 8 | UInt64(bytes[i]) }
            address = IPAddress(high: high, low: low, isIPv6: true)
        }
        if let address, !out.contains(address) { out.append(address) }
    }
    return out.isEmpty ? .failure(ResolveFailure(message: "no address")) : .success(out)
}
