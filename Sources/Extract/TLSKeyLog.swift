import Synchronization

// TLS session secrets in the SSLKEYLOGFILE format (draft-ietf-tls-keylogfile, RFC 9850): one line per secret,
// `LABEL <client random, 64 hex digits> <secret, hex>`, `#` lines are comments. Written by the operator's edge
// proxy (Apache Traffic Server `proxy.config.ssl.keylog_file`, Envoy, HAProxy, OpenSSL's keylog callback), read by
// `--tls-keylog` and `POST /v1/tls-keys`. Secrets are held in memory only and never printed: `TLSSecrets` has no
// description that shows them.

/// The labels the tap uses (others, e.g. EXPORTER_SECRET, are valid lines it has no use for).
public enum TLSKeyLabel: String, Sendable, CaseIterable {
    /// TLS 1.2: the 48-byte master secret.
    case clientRandom = "CLIENT_RANDOM"
    case clientHandshakeTrafficSecret = "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
    case serverHandshakeTrafficSecret = "SERVER_HANDSHAKE_TRAFFIC_SECRET"
    case clientTrafficSecret0 = "CLIENT_TRAFFIC_SECRET_0"
    case serverTrafficSecret0 = "SERVER_TRAFFIC_SECRET_0"
}

/// Labels of valid key-log lines the tap reads and ignores.
let ignoredKeyLabels: Set<String> = ["CLIENT_EARLY_TRAFFIC_SECRET", "EARLY_EXPORTER_SECRET", "EXPORTER_SECRET",
                                     "EARLY_EXPORTER_MASTER_SECRET", "EXPORTER_MASTER_SECRET", "RSA"]

/// One connection's secrets, as far as they have arrived.
public struct TLSSecrets: Sendable, CustomStringConvertible {
    public var master: [UInt8]?
    public var clientHandshake: [UInt8]?
    public var serverHandshake: [UInt8]?
    public var clientTraffic: [UInt8]?
    public var serverTraffic: [UInt8]?
    public init() {}

    public subscript(label: TLSKeyLabel) -> [UInt8]? {
        get {
            switch label {
            case .clientRandom: master
            case .clientHandshakeTrafficSecret: clientHandshake
            case .serverHandshakeTrafficSecret: serverHandshake
            case .clientTrafficSecret0: clientTraffic
            case .serverTrafficSecret0: serverTraffic
            }
        }
        set {
            switch label {
            case .clientRandom: master = newValue
            case .clientHandshakeTrafficSecret: clientHandshake = newValue
            case .serverHandshakeTrafficSecret: serverHandshake = newValue
            case .clientTrafficSecret0: clientTraffic = newValue
            case .serverTrafficSecret0: serverTraffic = newValue
            }
        }
    }

    /// Never the secrets: which of them are present.
    public var description: String {
        let present = TLSKeyLabel.allCases.filter { self[$0] != nil }.map(\.rawValue)
        return "TLSSecrets(\(present.joined(separator: ", ")))"
    }
}

/// One key-log line, read.
public struct TLSKeyLogLine: Sendable {
    public var label: TLSKeyLabel
    public var clientRandom: [UInt8]
    public var secret: [UInt8]

    /// What is wrong with a line (the message never repeats the secret).
    public enum Problem: Error, Equatable, Sendable, CustomStringConvertible {
        case fieldCount(Int)
        case unknownLabel(String)
        case badClientRandom
        case badSecret

        public var description: String {
            switch self {
            case .fieldCount(let n): "expected LABEL CLIENT_RANDOM SECRET, found \(n) fields"
            // Only a label-shaped word is repeated: a line cut or joined with another could put secret hex here.
            case .unknownLabel(let l):
                l.utf8.count <= 40 && l.utf8.allSatisfy({ ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f })
                    && l.utf8.contains(where: { ($0 >= 0x47 && $0 <= 0x5a) || $0 == 0x5f })  // not hex: G-Z or _
                    ? "unknown label \(l)" : "unknown label (not shown: not a label's shape)"
            case .badClientRandom: "the client random is not 64 hex digits"
            case .badSecret: "the secret is not 32, 48 or 64 bytes of hex (48 for CLIENT_RANDOM)"
            }
        }
    }

    /// A line: nil for a comment, a blank line or a label the tap has no use for; throws when it is not a key-log line.
    public static func parse(_ line: Substring) throws(Problem) -> TLSKeyLogLine? {
        let trimmed = line.drop { $0 == " " || $0 == "\t" }
        if trimmed.isEmpty || trimmed.first == "#" || trimmed.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" }) {
            return nil
        }
        let parts = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
        guard parts.count == 3 else { throw .fieldCount(parts.count) }
        guard let label = TLSKeyLabel(rawValue: String(parts[0])) else {
            if ignoredKeyLabels.contains(String(parts[0])) { return nil }
            throw .unknownLabel(String(parts[0]))
        }
        guard let random = hexBytes(parts[1]), random.count == 32 else { throw .badClientRandom }
        guard let secret = hexBytes(parts[2]) else { throw .badSecret }
        if label == .clientRandom {
            guard secret.count == 48 else { throw .badSecret }
        } else {
            guard secret.count == 32 || secret.count == 48 || secret.count == 64 else { throw .badSecret }
        }
        return TLSKeyLogLine(label: label, clientRandom: random, secret: secret)
    }
}

/// Hex digits (either case) to bytes; nil when odd in length or not hex.
func hexBytes(_ s: Substring) -> [UInt8]? {
    let u = Array(s.utf8)
    guard u.count % 2 == 0 else { return nil }
    func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }
    var out: [UInt8] = []
    out.reserveCapacity(u.count / 2)
    var i = 0
    while i < u.count {
        guard let h = nibble(u[i]), let l = nibble(u[i + 1]) else { return nil }
        out.append(h << 4 | l)
        i += 2
    }
    return out
}

/// What a batch of key-log lines gave.
public struct TLSKeyIntake: Sendable, Equatable {
    public var accepted = 0
    /// Valid lines the tap has no use for (comments, blank lines, other labels).
    public var ignored = 0
    public var rejected = 0
    /// The first rejected line's number (1-based) and reason, for the message.
    public var firstProblem: (line: Int, problem: TLSKeyLogLine.Problem)?
    public init() {}

    public static func == (a: TLSKeyIntake, b: TLSKeyIntake) -> Bool {
        a.accepted == b.accepted && a.ignored == b.ignored && a.rejected == b.rejected
            && a.firstProblem?.line == b.firstProblem?.line && a.firstProblem?.problem == b.firstProblem?.problem
    }
}

/// The secrets the tap holds, shared by the key intake (`--tls-keylog`, the API) and the workers. Bounded in
/// connections (the oldest go first) and in age; what is evicted is counted. A worker looks up a connection's
/// secrets when its ClientHello is complete and, while it waits for them, when `generation` says lines arrived
/// (an atomic load per segment of a waiting connection: the lock is taken per connection, never per packet); it
/// removes them when the connection ends.
public final class TLSKeyStore: Sendable {
    public struct Limits: Sendable {
        /// Connections whose secrets are held, at most.
        public var maxConnections: Int
        /// Secrets not claimed by a connection within this time go.
        public var maxAgeNanoseconds: UInt64
        public init(maxConnections: Int = 262_144, maxAgeNanoseconds: UInt64 = 600 * 1_000_000_000) {
            self.maxConnections = maxConnections
            self.maxAgeNanoseconds = maxAgeNanoseconds
        }
    }

    public struct Counters: Sendable, Equatable {
        public var linesAccepted: UInt64 = 0
        public var linesRejected: UInt64 = 0
        /// Connections' secrets evicted because the store was full.
        public var evictedFull: UInt64 = 0
        /// Connections' secrets evicted because no connection claimed them in time.
        public var evictedAge: UInt64 = 0
        /// Connections' secrets removed because their connection ended.
        public var removedEnded: UInt64 = 0
        public var held = 0
        public init() {}
    }

    private struct Entry {
        var secrets: TLSSecrets
        var added: UInt64
        var order: UInt64
    }

    private struct State {
        var entries: [[UInt8]: Entry] = [:]
        /// Insertion order (client randoms), oldest first, with `order` stamps: stale stamps are skipped.
        var fifo: [([UInt8], UInt64)] = []
        var fifoHead = 0
        var nextOrder: UInt64 = 0
        var counters = Counters()
    }

    public let limits: Limits
    private let state: Mutex<State>
    private let generationCounter = Atomic<UInt64>(0)
    private let clock: @Sendable () -> UInt64

    public init(limits: Limits = Limits(), clock: @escaping @Sendable () -> UInt64) {
        self.limits = limits
        self.clock = clock
        state = Mutex(State())
    }

    /// Changes whenever lines were added (workers waiting for secrets look again only then).
    @inline(__always)
    public var generation: UInt64 { generationCounter.load(ordering: .acquiring) }

    /// Adds the lines of `text` (a key-log file's appended part or an API body).
    @discardableResult
    public func add(text: Substring) -> TLSKeyIntake {
        var intake = TLSKeyIntake()
        var lines: [TLSKeyLogLine] = []
        var number = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            do throws(TLSKeyLogLine.Problem) {
                if let l = try TLSKeyLogLine.parse(line) { lines.append(l) } else { intake.ignored += 1 }
            } catch {
                intake.rejected += 1
                if intake.firstProblem == nil { intake.firstProblem = (number, error) }
            }
        }
        intake.accepted = lines.count
        add(lines, rejected: intake.rejected)
        return intake
    }

    public func add(_ lines: [TLSKeyLogLine], rejected: Int = 0) {
        let now = clock()
        state.withLock { s in
            s.counters.linesRejected &+= UInt64(rejected)
            for line in lines {
                s.counters.linesAccepted &+= 1
                if s.entries[line.clientRandom] != nil {
                    s.entries[line.clientRandom]!.secrets[line.label] = line.secret
                    continue
                }
                Self.expire(&s, now: now, limits: limits)
                if s.entries.count >= limits.maxConnections { Self.evictOldest(&s) }
                var secrets = TLSSecrets()
                secrets[line.label] = line.secret
                s.nextOrder &+= 1
                s.entries[line.clientRandom] = Entry(secrets: secrets, added: now, order: s.nextOrder)
                s.fifo.append((line.clientRandom, s.nextOrder))
            }
            s.counters.held = s.entries.count
        }
        if !lines.isEmpty { generationCounter.add(1, ordering: .releasing) }
    }

    /// The secrets of the connection whose ClientHello carried `clientRandom`, as far as they have arrived.
    public func secrets(clientRandom: [UInt8]) -> TLSSecrets? {
        state.withLock { $0.entries[clientRandom]?.secrets }
    }

    /// The connection ended: its secrets go.
    public func remove(clientRandom: [UInt8]) {
        state.withLock { s in
            if s.entries.removeValue(forKey: clientRandom) != nil { s.counters.removedEnded &+= 1 }
            s.counters.held = s.entries.count
        }
    }

    public var counters: Counters {
        let now = clock()
        return state.withLock { s in
            Self.expire(&s, now: now, limits: limits)
            s.counters.held = s.entries.count
            return s.counters
        }
    }

    private static func expire(_ s: inout State, now: UInt64, limits: Limits) {
        while s.fifoHead < s.fifo.count {
            let (random, order) = s.fifo[s.fifoHead]
            guard let e = s.entries[random], e.order == order else { s.fifoHead += 1; continue }
            guard now &- e.added > limits.maxAgeNanoseconds, now >= e.added else { break }
            s.entries[random] = nil
            s.counters.evictedAge &+= 1
            s.fifoHead += 1
        }
        compact(&s)
    }

    private static func evictOldest(_ s: inout State) {
        while s.fifoHead < s.fifo.count {
            let (random, order) = s.fifo[s.fifoHead]
            s.fifoHead += 1
            guard let e = s.entries[random], e.order == order else { continue }
            s.entries[random] = nil
            s.counters.evictedFull &+= 1
            break
        }
        compact(&s)
    }

    /// Drops the consumed head of the FIFO once it is half of it (amortized O(1)).
    private static func compact(_ s: inout State) {
        if s.fifoHead > 1024 && s.fifoHead * 2 > s.fifo.count {
            s.fifo.removeFirst(s.fifoHead)
            s.fifoHead = 0
        }
        // Removed entries leave stale stamps behind: rebuild when they dominate.
        if s.fifo.count - s.fifoHead > 4 * max(1024, s.entries.count) {
            s.fifo = s.fifo[s.fifoHead...].filter { s.entries[$0.0]?.order == $0.1 }
            s.fifoHead = 0
        }
    }
}
