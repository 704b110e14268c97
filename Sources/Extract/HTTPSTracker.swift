import Decode
import Flows

/// Reads HTTP inside TLS with the secrets the operator's edge proxy logs (`TLSKeyStore`): both directions of a
/// TLS connection are put back in order and cut into records; the ClientHello gives the client random (the key
/// log's index), the ServerHello the version and cipher suite; records are opened with the connection's secrets
/// (TLS 1.3: handshake keys until the Finished, then the application keys, KeyUpdate followed; TLS 1.2: the key
/// block from the master secret after each side's ChangeCipherSpec); the plaintext goes to HTTP/2 (ALPN h2, or the
/// connection preface) or to the HTTP/1.x parser, and each request with its response becomes a web_link event like
/// plaintext HTTP's, with `transport` "tls" and the ALPN.
///
/// Records that arrive before their secrets are held, bounded in bytes per connection and by the worker's TCP
/// memcap, until the secrets come (the store's generation says when to look) or `keyWait` passes. A record that
/// fails authentication, a gap in either direction or a suite the tap does not decrypt ends the reading of that
/// connection (counted); the TLS tracker's server_name event is what remains of it.
package final class HTTPSTracker {
    private enum Phase { case plaintext, handshake, application }

    /// One direction's TLS state. A class: the record path changes it in place (no copy of its buffers per record).
    private final class Direction {
        /// A record cut by a segment's end.
        var record: [UInt8] = []
        var phase = Phase.plaintext
        var protection: TLSRecordProtection?
        var handshake = HandshakeReader()
        /// TLS 1.3 records of the handshake phase skipped (the handshake secret was not logged, or 0-RTT data).
        var skipped = 0
        var buffered: Int { record.count + handshake.buffered }
    }

    private enum Application {
        case undecided
        case h2(client: HTTP2FrameReader, server: HTTP2FrameReader)
        case http1(client: HTTPStreamParser, server: HTTPStreamParser)
        case none
    }

    private final class Connection {
        var entry: FlowEntry
        let vlans: [UInt16]
        let teid: UInt32?
        /// The reassemblers apart from the directions' states: a reassembler calls back into its direction's state.
        var clientStream = StreamReassembler(maxBuffered: 256 * 1024)
        var serverStream = StreamReassembler(maxBuffered: 256 * 1024)
        let client = Direction()
        let server = Direction()
        var clientRandom: [UInt8]?
        var serverRandom: [UInt8]?
        /// The ClientHello offered 0-RTT: client records that open under no handshake key are early data, skipped.
        var earlyData = false
        var suite: TLSCipherSuite?
        var tls13 = false
        var alpn: String?
        var secrets: TLSSecrets?
        var generation: UInt64 = .max
        /// Records waiting for their secrets, in arrival order: (from client, record bytes).
        var held: [(Bool, [UInt8])] = []
        /// Their bytes with `heldOverhead` each: what they cost, as charged.
        var heldBytes = 0
        var heldSince: UInt64 = 0
        var everHeld = false
        var decrypted = false
        var app = Application.undecided
        /// Server plaintext read before the client's told which protocol this is.
        var early: [UInt8] = []
        var h2Requests: [UInt32: HTTP2Headers] = [:]
        var h2Order: [UInt32] = []
        var h1Pending: [HTTPRequest] = []
        var failed = false
        /// What this connection has charged to the worker's memcap (`buffered` when it was last settled).
        var charged = 0

        init(entry: FlowEntry, vlans: [UInt16], teid: UInt32?) {
            self.entry = entry
            self.vlans = vlans
            self.teid = teid
            if entry.hasClientISN { clientStream.start(at: entry.clientISN &+ 1) }
            if entry.hasServerISN { serverStream.start(at: entry.serverISN &+ 1) }
        }

        /// Everything the connection holds apart from its fixed state: out-of-order bytes, cut records and
        /// handshake messages, held records, early server plaintext, HTTP/2 frames in progress.
        var buffered: Int {
            var n = clientStream.buffered + serverStream.buffered + heldBytes + client.buffered + server.buffered + early.count
            if case .h2(let c, let s) = app { n += c.buffered + s.buffered }
            return n
        }
    }

    /// Server endpoints with a connection whose secrets were found (at most `maxKeyedServers`): the operator's
    /// proxies. A connection to any other server holds at most `unkeyedHeldBytes` while it waits, so TLS the tap
    /// will never get keys for costs little memory.
    private var keyedServers: Set<ServerEndpoint> = []
    private struct ServerEndpoint: Hashable { var address: IPAddress; var port: UInt16 }
    static let maxKeyedServers = 4096
    /// What a connection to a server not known to be keyed may hold while it waits for its secrets.
    package static let unkeyedHeldBytes = 256 * 1024
    /// What holding a record costs beyond its bytes (its array and its place in the list), as charged.
    static let heldOverhead = 64

    private var connections: ConnectionSlots<Connection>
    package var counters = HTTPSCounters()
    private let keys: TLSKeyStore
    private let keyWait: UInt64
    private let budget: StreamBudget
    /// Record bytes held per connection while its secrets are awaited, at most (`--tls-max-held`): a fast transfer
    /// (megabytes in the tens of milliseconds before the key log's line reaches the tap) must fit.
    private let maxHeldBytes: Int
    /// h2 streams (or HTTP/1.1 requests) waiting for their responses on one connection, at most.
    package static let maxPending = 256
    /// TLS 1.3 handshake-phase records that can be skipped without the handshake secret before the application
    /// secret is taken to be wrong.
    static let maxSkippedHandshakeRecords = 32
    /// 0-RTT records skipped, at most (servers accept kilobytes of early data: 16 KiB is common).
    static let maxEarlyRecords = 1024
    /// The largest TLSCiphertext (RFC 5246 §6.2.3: 2^14 + 2048); a longer length is not TLS.
    static let maxRecordLength = 18432

    package init(keys: TLSKeyStore, keyWaitNanoseconds: UInt64, maxHeldBytes: Int = 8 << 20, maxConnections: Int = 65536,
                 budget: StreamBudget)
    {
        self.maxHeldBytes = maxHeldBytes
        self.keys = keys
        keyWait = keyWaitNanoseconds
        connections = ConnectionSlots(capacity: maxConnections)
        self.budget = budget
    }

    /// A client segment that starts a TLS handshake record holding a ClientHello.
    @inline(__always)
    package static func mightStart(_ payload: UnsafeRawBufferPointer) -> Bool {
        payload.count >= 6 && payload[0] == 22 && payload[1] == 3 && payload[5] == 1
    }

    @inline(never)
    package func handle(_ mark: inout Int32, entry: FlowEntry, fromClient: Bool, seq: UInt32, syn: Bool,
                        payload: UnsafeRawBufferPointer, packet p: DecodedPacket, ts: UInt64,
                        publish: (StateEvent) -> Void)
    {
        let c: Connection
        if mark > 0, let existing = connections[mark], existing.entry.key == entry.key {
            c = existing
        } else {
            guard mark == 0, fromClient, Self.mightStart(payload) else { return }
            let new = Connection(entry: entry, vlans: vlanList(p), teid: p.hasTEID ? p.teid : nil)
            guard let h = connections.insert(new) else {
                counters.tableFull &+= 1
                mark = ApplicationHandles.done
                return
            }
            if !entry.hasClientISN { new.clientStream.start(at: seq) }
            mark = h
            c = new
            counters.connections &+= 1
        }
        c.entry = entry
        guard !c.failed else { return }
        if !c.held.isEmpty { retryHeld(c, ts: ts, publish: publish) }
        var gap = false
        if fromClient {
            c.clientStream.add(seq: seq, syn: syn, payload: payload) { e in
                switch e {
                case .data(let d): if !c.failed && !gap { self.bytes(d, c.client, fromClient: true, c, ts: ts, publish: publish) }
                case .gap, .cut: gap = true
                }
            }
        } else {
            c.serverStream.add(seq: seq, syn: syn, payload: payload) { e in
                switch e {
                case .data(let d): if !c.failed && !gap { self.bytes(d, c.server, fromClient: false, c, ts: ts, publish: publish) }
                case .gap, .cut: gap = true
                }
            }
        }
        if gap && !c.failed { fail(c, &counters.gaps, ts: ts, publish: publish) }
        // What the connection holds is charged to the worker's memcap; over it, this connection stops.
        if settle(c), !c.failed { fail(c, &counters.memcapSkips, ts: ts, publish: publish) }
        if c.failed {
            release(mark, c)
            mark = ApplicationHandles.done
        }
    }

    /// Charges (or releases) what the connection's holdings changed by since it last settled; true when the
    /// worker is over its memcap.
    @discardableResult
    private func settle(_ c: Connection) -> Bool {
        let now = c.buffered
        defer { c.charged = now }
        return budget.charge(now - c.charged)
    }

    /// The connection ended: its waiting requests go out without responses, its secrets are dropped. A connection
    /// whose records still wait for their secrets waits on after its end (a short exchange is over before the
    /// proxy's key log line reaches the tap): parked, looked at by `poll`, until `keyWait` has passed.
    package func ended(_ mark: Int32, ts: UInt64, publish: (StateEvent) -> Void) {
        guard mark > 0, let c = connections[mark] else { return }
        if !c.held.isEmpty && !c.failed { retryHeld(c, ts: ts, publish: publish) }
        guard connections.remove(mark) != nil else { return }
        if !c.held.isEmpty && !c.failed && parked.count < Self.maxParked {
            settle(c)  // still charged to the memcap: released when it leaves the park
            parked.append(c)
            return
        }
        if !c.held.isEmpty && !c.failed { fail(c, &counters.keysNeverCame, ts: ts, publish: publish) }
        flushPending(c, ts: ts, publish: publish)
        forget(c)
    }

    /// Ended connections waiting for their secrets, at most (beyond, they are given up at once, counted as
    /// `keysNeverCame`).
    package static let maxParked = 4096
    private var parked: [Connection] = []

    /// Whether `poll` has anything to do (an array count: cheap enough for the worker's idle loop).
    @inline(__always)
    package var hasParked: Bool { !parked.isEmpty }

    /// Parked connections: read the ones whose secrets have come, give up those that waited `keyWait` (`now`, the
    /// capture clock) or all of them (`final`, the run is ending).
    package func poll(now: UInt64, final: Bool = false, publish: (StateEvent) -> Void) {
        guard !parked.isEmpty else { return }
        var still: [Connection] = []
        for c in parked {
            retryHeld(c, ts: now, publish: publish, final: final)
            if !c.held.isEmpty && !c.failed {
                settle(c)
                still.append(c)
                continue
            }
            flushPending(c, ts: now, publish: publish)
            forget(c)
        }
        parked = still
    }

    package var followed: Int { connections.count }

    /// Frees the connection's slot and what it had charged to the memcap.
    private func release(_ mark: Int32, _ c: Connection) {
        guard connections.remove(mark) != nil else { return }
        forget(c)
    }

    /// Its charge to the memcap goes, and its secrets, here and (when it used them) in the store: a flow that only
    /// replays another connection's ClientHello random cannot take that connection's secrets away.
    private func forget(_ c: Connection) {
        budget.release(c.charged)
        c.charged = 0
        c.held = []
        c.heldBytes = 0
        c.secrets = nil
        if c.decrypted, let r = c.clientRandom { keys.remove(clientRandom: r) }
    }

    // MARK: records

    /// In-order bytes of one direction: cut into records.
    private func bytes(_ d: UnsafeRawBufferPointer, _ dir: Direction, fromClient: Bool, _ c: Connection, ts: UInt64,
                       publish: (StateEvent) -> Void)
    {
        var i = 0
        while i < d.count && !c.failed {
            // Fast path: a whole record in the segment and nothing buffered.
            if dir.record.isEmpty, d.count - i >= 5 {
                let length = Int(d[i + 3]) << 8 | Int(d[i + 4])
                guard length <= Self.maxRecordLength else { return fail(c, &counters.notTLS, ts: ts, publish: publish) }
                if d.count - i >= 5 + length {
                    counters.records &+= 1
                    record(UnsafeRawBufferPointer(rebasing: d[i..<i + 5 + length]), fromClient: fromClient, c, ts: ts, publish: publish)
                    i += 5 + length
                    continue
                }
            }
            if dir.record.count < 5 {
                let n = min(5 - dir.record.count, d.count - i)
                dir.record.append(contentsOf: d[i..<i + n])
                i += n
                if dir.record.count < 5 { return }
            }
            let length = Int(dir.record[3]) << 8 | Int(dir.record[4])
            guard length <= Self.maxRecordLength else { return fail(c, &counters.notTLS, ts: ts, publish: publish) }
            let n = min(5 + length - dir.record.count, d.count - i)
            dir.record.append(contentsOf: d[i..<i + n])
            i += n
            guard dir.record.count == 5 + length else { return }
            counters.records &+= 1
            // Taken out while it is read (the record path may change the direction), its buffer given back after.
            var whole: [UInt8] = []
            swap(&whole, &dir.record)
            whole.withUnsafeBytes { record($0, fromClient: fromClient, c, ts: ts, publish: publish) }
            whole.removeAll(keepingCapacity: true)
            dir.record = whole
        }
    }

    /// One whole record (5-byte header + body).
    private func record(_ r: UnsafeRawBufferPointer, fromClient: Bool, _ c: Connection, ts: UInt64,
                        publish: (StateEvent) -> Void)
    {
        let type = r[0]
        guard r[1] == 3 else { return fail(c, &counters.notTLS, ts: ts, publish: publish) }
        // Anything held keeps its place: later records of both directions wait behind it, so requests and
        // responses are read in the order the tap saw them (an edge proxy logs the server's secret before the
        // client's: a response must not be read before the request it answers).
        if !c.held.isEmpty {
            return hold(r, fromClient: fromClient, c, ts: ts, publish: publish)
        }
        let dir = fromClient ? c.client : c.server
        switch (type, dir.phase) {
        case (20, _):  // ChangeCipherSpec: TLS 1.2 encrypts from here on; TLS 1.3 sends it for compatibility only.
            if !c.tls13 && c.suite != nil { dir.phase = .application }
        case (22, .plaintext):
            plaintextHandshake(UnsafeRawBufferPointer(rebasing: r[5...]), dir, fromClient: fromClient, c, ts: ts, publish: publish)
        case (21, .plaintext):
            break  // an alert before encryption: the connection is ending
        case (23, .plaintext) where fromClient && c.earlyData && c.suite == nil:
            skipEarly(dir, c, ts: ts, publish: publish)  // 0-RTT data before the ServerHello
        case (23, .plaintext) where !c.tls13:
            return fail(c, &counters.notTLS, ts: ts, publish: publish)
        default:
            guard c.suite != nil else { return fail(c, &counters.notTLS, ts: ts, publish: publish) }
            encrypted(r, dir, fromClient: fromClient, c, ts: ts, publish: publish)
        }
    }

    /// A 0-RTT record: under the early traffic secret, which the tap does not use (the request is repeated or
    /// answered after the handshake on the keys it does have).
    private func skipEarly(_ dir: Direction, _ c: Connection, ts: UInt64, publish: (StateEvent) -> Void) {
        dir.skipped += 1
        counters.earlyDataRecords &+= 1
        if dir.skipped > Self.maxEarlyRecords { fail(c, &counters.notTLS, ts: ts, publish: publish) }
    }

    /// Handshake messages before encryption: the ClientHello's random, the ServerHello's version, suite, ALPN.
    private func plaintextHandshake(_ body: UnsafeRawBufferPointer, _ dir: Direction, fromClient: Bool, _ c: Connection,
                                    ts: UInt64, publish: (StateEvent) -> Void)
    {
        let wanted: UInt8 = fromClient ? 1 : 2
        let ok = dir.handshake.feed(body, wants: { $0 == wanted }) { message in
            if fromClient {
                guard message.count >= 38 else { fail(c, &counters.notTLS, ts: ts, publish: publish); return false }
                if c.clientRandom == nil {
                    c.clientRandom = Array(message[6..<38])
                    c.earlyData = (try? ClientHelloParser.parse(message))?.earlyData ?? false
                }
                return true
            }
            guard let hello = ServerHello.parse(message) else { fail(c, &counters.notTLS, ts: ts, publish: publish); return false }
            if hello.retry { return true }  // HelloRetryRequest: the real ServerHello follows the second ClientHello
            c.serverRandom = hello.random
            c.tls13 = hello.version == 0x0304
            if let a = hello.alpn { c.alpn = a }
            guard let suite = TLSCipherSuite(id: hello.cipherSuite), suite.tls13 == c.tls13 else {
                fail(c, &counters.unsupportedSuite, ts: ts, publish: publish)
                return false
            }
            c.suite = suite
            if c.tls13 { counters.tls13 &+= 1 } else { counters.tls12 &+= 1 }
            if c.tls13 {
                c.client.phase = .handshake
                c.server.phase = .handshake
            }
            return true
        }
        if !ok && !c.failed { fail(c, &counters.notTLS, ts: ts, publish: publish) }
    }

    /// An encrypted record: opened with its direction's keys, or held until they arrive.
    private func encrypted(_ r: UnsafeRawBufferPointer, _ dir: Direction, fromClient: Bool, _ c: Connection, ts: UInt64,
                           publish: (StateEvent) -> Void)
    {
        guard let suite = c.suite, let clientRandom = c.clientRandom else { return fail(c, &counters.notTLS, ts: ts, publish: publish) }
        let header = UnsafeRawBufferPointer(rebasing: r[0..<5])
        let body = UnsafeRawBufferPointer(rebasing: r[5...])
        if !c.tls13 {
            if dir.protection == nil {
                guard let master = secret(c, \.master), let serverRandom = c.serverRandom else {
                    return hold(r, fromClient: fromClient, c, ts: ts, publish: publish)
                }
                dir.protection = TLSRecordProtection(tls12: suite, master: master, clientRandom: clientRandom,
                                                     serverRandom: serverRandom, client: fromClient)
            }
            do throws(TLSRecordProtection.Failure) {
                let plain = try dir.protection!.open(header: header, body: body)
                noteDecrypted(c, plain.count)
                if r[0] == 23 {
                    plain.withUnsafeBytes { application($0, fromClient: fromClient, c, ts: ts, publish: publish) }
                }
            } catch {
                return fail(c, &counters.authenticationFailures, ts: ts, publish: publish)
            }
            return
        }
        // TLS 1.3
        let appPath: KeyPath<TLSSecrets, [UInt8]?> = fromClient ? \.clientTraffic : \.serverTraffic
        if dir.phase == .handshake {
            let hsSecret = secret(c, fromClient ? \.clientHandshake : \.serverHandshake)
            if let hsSecret {
                if dir.protection == nil { dir.protection = TLSRecordProtection(tls13: suite, secret: hsSecret) }
                var trial = dir.protection!
                if let plain = try? trial.open(header: header, body: body) {
                    dir.protection = trial
                    noteDecrypted(c, plain.count)
                    guard let (type, length) = TLSRecordProtection.innerType(plain), type == 22 else { return }
                    plain.withUnsafeBytes {
                        encryptedHandshake(UnsafeRawBufferPointer(rebasing: $0[0..<length]), dir, fromClient: fromClient, c,
                                           ts: ts, publish: publish)
                    }
                    return
                }
            }
            // No handshake secret (or this record is not the handshake's): is it the first application record?
            guard let appSecret = secret(c, appPath) else {
                return hold(r, fromClient: fromClient, c, ts: ts, publish: publish)
            }
            var trial = TLSRecordProtection(tls13: suite, secret: appSecret)
            guard (try? trial.open(header: header, body: body)) != nil else {
                // 0-RTT data (under the early secret) opens under neither key: skipped, as the server does when it
                // rejects it. Otherwise the keys are wrong.
                if fromClient && c.earlyData && r[0] == 23 { return skipEarly(dir, c, ts: ts, publish: publish) }
                dir.skipped += 1
                if dir.skipped > Self.maxSkippedHandshakeRecords || hsSecret != nil {
                    fail(c, &counters.authenticationFailures, ts: ts, publish: publish)
                }
                return
            }
            dir.phase = .application
            dir.protection = TLSRecordProtection(tls13: suite, secret: appSecret)
            dir.handshake.reset()
        }
        if dir.protection == nil {
            // After the Finished, before the application secret was logged.
            guard let appSecret = secret(c, appPath) else { return hold(r, fromClient: fromClient, c, ts: ts, publish: publish) }
            dir.protection = TLSRecordProtection(tls13: suite, secret: appSecret)
        }
        do throws(TLSRecordProtection.Failure) {
            let plain = try dir.protection!.open(header: header, body: body)
            noteDecrypted(c, plain.count)
            guard let (type, length) = TLSRecordProtection.innerType(plain) else {
                return fail(c, &counters.authenticationFailures, ts: ts, publish: publish)
            }
            switch type {
            case 23:
                plain.withUnsafeBytes {
                    application(UnsafeRawBufferPointer(rebasing: $0[0..<length]), fromClient: fromClient, c, ts: ts, publish: publish)
                }
            case 22:
                // NewSessionTicket (skipped), KeyUpdate (the sender's next records use its next secret).
                let ok = plain.withUnsafeBytes {
                    dir.handshake.feed(UnsafeRawBufferPointer(rebasing: $0[0..<length]), wants: { $0 == 24 }) { _ in
                        dir.protection!.update()
                        counters.keyUpdates &+= 1
                        return true
                    }
                }
                if !ok { fail(c, &counters.notTLS, ts: ts, publish: publish) }
            default:
                break  // alerts
            }
        } catch {
            return fail(c, &counters.authenticationFailures, ts: ts, publish: publish)
        }
    }

    /// One of the connection's secrets: from what it holds, or from the store when lines arrived since it last
    /// looked (the lock is taken then only).
    private func secret(_ c: Connection, _ path: KeyPath<TLSSecrets, [UInt8]?>) -> [UInt8]? {
        if let s = c.secrets?[keyPath: path] { return s }
        refreshSecrets(c)
        return c.secrets?[keyPath: path]
    }

    /// Looks in the store when lines arrived since the connection last looked. What the connection already has is
    /// kept when the store no longer has it (evicted for age or count: the connection still needs it).
    private func refreshSecrets(_ c: Connection) {
        let g = keys.generation
        guard g != c.generation, let random = c.clientRandom else { return }
        c.generation = g
        if let s = keys.secrets(clientRandom: random) {
            c.secrets = s
            if keyedServers.count < Self.maxKeyedServers {
                keyedServers.insert(ServerEndpoint(address: c.entry.serverAddress, port: c.entry.serverPort))
            }
        }
    }

    /// TLS 1.3 handshake messages under the handshake keys: the server's EncryptedExtensions (its ALPN), then each
    /// side's Finished, after which its application keys apply. Certificates and the rest are skipped unread.
    private func encryptedHandshake(_ d: UnsafeRawBufferPointer, _ dir: Direction, fromClient: Bool, _ c: Connection,
                                    ts: UInt64, publish: (StateEvent) -> Void)
    {
        let ok = dir.handshake.feed(d, wants: { $0 == 20 || (!fromClient && $0 == 8) }) { message in
            if message[0] == 8 {
                if let a = ServerHello.alpn(encryptedExtensions: message) { c.alpn = a }
                return true
            }
            // Finished: the next records are under the application keys (a key change ends a record, RFC 8446 §5.1).
            dir.phase = .application
            dir.protection = secret(c, fromClient ? \.clientTraffic : \.serverTraffic).map {
                TLSRecordProtection(tls13: c.suite!, secret: $0)
            }
            return false
        }
        if !ok { fail(c, &counters.notTLS, ts: ts, publish: publish) }
    }

    private func noteDecrypted(_ c: Connection, _ n: Int) {
        counters.recordsDecrypted &+= 1
        counters.bytesDecrypted &+= UInt64(n)
        if !c.decrypted {
            c.decrypted = true
            counters.connectionsDecrypted &+= 1
            if c.everHeld { counters.keysLate &+= 1 }
        }
    }

    // MARK: records waiting for secrets

    private func hold(_ r: UnsafeRawBufferPointer, fromClient: Bool, _ c: Connection, ts: UInt64,
                      publish: (StateEvent) -> Void)
    {
        if c.held.isEmpty { c.heldSince = ts }
        if !c.everHeld {
            c.everHeld = true
            counters.connectionsHeld &+= 1
        }
        // A server no connection found secrets for yet gets a small allowance: TLS the tap never gets keys for
        // (not the operator's proxy) gives up early instead of filling the memcap for `keyWait`.
        let keyed = c.secrets != nil
            || keyedServers.contains(ServerEndpoint(address: c.entry.serverAddress, port: c.entry.serverPort))
        let limit = keyed ? maxHeldBytes : min(maxHeldBytes, Self.unkeyedHeldBytes)
        guard c.heldBytes + r.count + Self.heldOverhead <= limit else {
            return fail(c, &counters.heldOverflow, ts: ts, publish: publish)
        }
        c.held.append((fromClient, Array(r)))
        c.heldBytes += r.count + Self.heldOverhead
    }

    /// Looks for the secrets again when lines arrived since the last look; replays what was held once they are
    /// there; gives up after `keyWait` (or at the connection's end, `final`).
    private func retryHeld(_ c: Connection, ts: UInt64, publish: (StateEvent) -> Void, final: Bool = false) {
        refreshSecrets(c)
        if Self.ready(c) {
            let held = c.held
            c.held = []
            c.heldBytes = 0
            for (fromClient, r) in held where !c.failed {
                r.withUnsafeBytes { record($0, fromClient: fromClient, c, ts: ts, publish: publish) }
            }
            return
        }
        if final || (ts > c.heldSince && ts &- c.heldSince > keyWait) {
            fail(c, &counters.keysNeverCame, ts: ts, publish: publish)
        }
    }

    /// The secrets the held records need have arrived.
    private static func ready(_ c: Connection) -> Bool {
        guard let s = c.secrets else { return false }
        if !c.tls13 { return s.master != nil }
        let needClient = c.held.contains { $0.0 }, needServer = c.held.contains { !$0.0 }
        return (!needClient || s.clientTraffic != nil) && (!needServer || s.serverTraffic != nil)
    }

    /// Stops reading the connection, counting why in `counter`; what waited for a response goes out without one.
    private func fail(_ c: Connection, _ counter: inout UInt64, ts: UInt64, publish: (StateEvent) -> Void) {
        guard !c.failed else { return }
        counter &+= 1
        c.failed = true
        c.held = []
        c.heldBytes = 0
        flushPending(c, ts: ts, publish: publish)
        c.secrets = nil
    }

    // MARK: HTTP inside

    private func application(_ d: UnsafeRawBufferPointer, fromClient: Bool, _ c: Connection, ts: UInt64,
                             publish: (StateEvent) -> Void)
    {
        if case .undecided = c.app {
            if c.alpn == nil && !fromClient {
                // Which protocol is known from the client's first bytes: keep the server's until then.
                guard c.early.count + d.count <= 64 * 1024 else { c.app = .none; return }
                c.early.append(contentsOf: d)
                return
            }
            let preface = d.count >= 3 && d[0] == 0x50 && d[1] == 0x52 && d[2] == 0x49  // "PRI"
            switch c.alpn {
            case "h2"?: c.app = .h2(client: HTTP2FrameReader(side: .client), server: HTTP2FrameReader(side: .server))
            case nil where fromClient && preface:
                c.alpn = "h2"
                c.app = .h2(client: HTTP2FrameReader(side: .client), server: HTTP2FrameReader(side: .server))
            case "http/1.1"?, "http/1.0"?, nil:
                c.app = .http1(client: HTTPStreamParser(side: .client, fromStart: true),
                               server: HTTPStreamParser(side: .server, fromStart: true))
                if c.alpn == nil { c.alpn = "http/1.1" }
            default:
                c.app = .none
            }
            switch c.app {
            case .h2: counters.h2Connections &+= 1
            case .http1: counters.http1Connections &+= 1
            default: counters.otherApplications &+= 1
            }
            if !c.early.isEmpty {
                let early = c.early
                c.early = []
                early.withUnsafeBytes { application($0, fromClient: false, c, ts: ts, publish: publish) }
            }
        }
        switch c.app {
        case .h2(var client, var server):
            c.app = .none  // not two copies of the readers while one is fed
            var events: [HTTP2Event] = []
            if fromClient { client.feed(d) { events.append($0) } } else { server.feed(d) { events.append($0) } }
            c.app = .h2(client: client, server: server)
            for e in events { h2Event(e, fromClient: fromClient, c, ts: ts, publish: publish) }
        case .http1(var client, var server):
            c.app = .none
            var messages: [HTTPStreamParser.Message] = []
            if fromClient { client.feed(d) { messages.append($0) } } else { server.feed(d) { messages.append($0) } }
            for m in messages {
                switch m {
                case .request(let r):
                    counters.requests &+= 1
                    server.pendingMethods.append(r.method)
                    c.h1Pending.append(r)
                    if c.h1Pending.count > Self.maxPending {
                        // The oldest goes out unanswered; the server parser's view of which response answers what
                        // loses it too (a HEAD among them would otherwise misread the bodies after it).
                        publish(event(c, c.h1Pending.removeFirst(), nil, ts))
                        if !server.pendingMethods.isEmpty { server.pendingMethods.removeFirst() }
                    }
                case .response(let r):
                    counters.responses &+= 1
                    if !c.h1Pending.isEmpty { publish(event(c, c.h1Pending.removeFirst(), r, ts)) }
                case .lostSync:
                    counters.lostSync &+= 1
                    for r in c.h1Pending { publish(event(c, r, nil, ts)) }
                    c.h1Pending.removeAll()
                    server.pendingMethods.removeAll()
                }
            }
            c.app = .http1(client: client, server: server)
        case .undecided, .none:
            break
        }
    }

    private func h2Event(_ e: HTTP2Event, fromClient: Bool, _ c: Connection, ts: UInt64, publish: (StateEvent) -> Void) {
        switch e {
        case .headers(let stream, let h, _, let promised):
            if fromClient {
                guard h.method != nil, c.h2Requests[stream] == nil else { return }  // trailers
                addRequest(stream, h, c, ts: ts, publish: publish)
            } else if let promised {
                addRequest(promised, h, c, ts: ts, publish: publish)  // a pushed request
            } else if let status = h.status, status >= 200, let request = c.h2Requests.removeValue(forKey: stream) {
                counters.responses &+= 1
                c.h2Order.removeAll { $0 == stream }
                let response = HTTPResponse(status: status, version: "HTTP/2", headers: h.kept, truncated: h.truncated)
                publish(event(c, request, response, ts))
            }
        case .reset(let stream):
            if let request = c.h2Requests.removeValue(forKey: stream) {
                c.h2Order.removeAll { $0 == stream }
                publish(event(c, request, nil, ts))
            }
        case .headerTableSize(let size):
            // One side's SETTINGS bound the other side's encoder.
            if case .h2(let client, let server) = c.app {
                if fromClient { server.allowTableSize(size) } else { client.allowTableSize(size) }
            }
        case .endStream, .goaway:
            break
        case .lostSync:
            counters.lostSync &+= 1
            if !fromClient { flushPending(c, ts: ts, publish: publish) }
        }
    }

    private func addRequest(_ stream: UInt32, _ h: HTTP2Headers, _ c: Connection, ts: UInt64, publish: (StateEvent) -> Void) {
        counters.requests &+= 1
        c.h2Requests[stream] = h
        c.h2Order.append(stream)
        if c.h2Order.count > Self.maxPending {
            let oldest = c.h2Order.removeFirst()
            if let r = c.h2Requests.removeValue(forKey: oldest) { publish(event(c, r, nil, ts)) }
        }
    }

    private func flushPending(_ c: Connection, ts: UInt64, publish: (StateEvent) -> Void) {
        for s in c.h2Order { if let r = c.h2Requests[s] { publish(event(c, r, nil, ts)) } }
        c.h2Order.removeAll()
        c.h2Requests.removeAll()
        for r in c.h1Pending { publish(event(c, r, nil, ts)) }
        c.h1Pending.removeAll()
    }

    // MARK: events

    private func baseEvent(_ c: Connection, ts: UInt64) -> StateEvent {
        let entry = c.entry
        return StateEvent(kind: .webLink, timestampNanoseconds: ts,
                          device: entry.hasDevice ? entry.device : entry.clientAddress,
                          client: entry.clientAddress, clientPort: entry.clientPort,
                          server: entry.serverAddress, serverPort: entry.serverPort, vlans: c.vlans, teid: c.teid)
    }

    private func finish(_ e: inout StateEvent, _ c: Connection, method: String, _ response: HTTPResponse?) {
        e.transport = "tls"
        e.alpn = c.alpn.map { [$0] } ?? []
        if let response {
            e.status = response.status
            e.responseHeaders = response.headers
            e.cacheable = Cacheability.isCacheable(method: method, response: response)
            e.proxy = EdgeProxy.identify(response)
        }
    }

    private func event(_ c: Connection, _ h: HTTP2Headers, _ response: HTTPResponse?, _ ts: UInt64) -> StateEvent {
        var e = baseEvent(c, ts: ts)
        let method = h.method ?? "GET"
        let authority = h.authority ?? h.host ?? HTTPTracker.authority(c.entry.serverAddress, c.entry.serverPort, scheme: "https")
        let scheme = h.scheme == "http" ? "http" : "https"
        // A :path not kept (over the block's limit, not UTF-8) gives no URL rather than a wrong one.
        let url: String? = method == "CONNECT" || (h.path == nil && h.truncated) ? nil : scheme + "://" + authority + (h.path ?? "/")
        e.fields.reserveCapacity(160 + 2 * (url?.utf8.count ?? 0) + (response == nil ? 0 : 320))
        e.method = method
        e.url = url
        e.host = authority
        if h.authority == nil && h.host == nil { e.hostFrom = "address" }
        e.httpVersion = "HTTP/2"
        if h.truncated || response?.truncated == true { e.truncated = true }
        finish(&e, c, method: method, response)
        return e
    }

    private func event(_ c: Connection, _ r: HTTPRequest, _ response: HTTPResponse?, _ ts: UInt64) -> StateEvent {
        var e = baseEvent(c, ts: ts)
        let authority = r.host ?? HTTPTracker.authority(c.entry.serverAddress, c.entry.serverPort, scheme: "https")
        var url: String?
        if r.method != "CONNECT" {
            if let absolute = r.url, !r.target.hasPrefix("/") { url = absolute } else {
                url = "https://" + authority + (r.target.hasPrefix("/") ? r.target : "/" + r.target)
            }
        }
        e.fields.reserveCapacity(160 + 2 * (url?.utf8.count ?? 0) + (response == nil ? 0 : 320))
        e.method = r.method
        e.url = url
        e.host = r.host
        if r.host == nil { e.hostFrom = "address" }
        if r.truncated || response?.truncated == true { e.truncated = true }
        e.httpVersion = r.version
        finish(&e, c, method: r.method, response)
        return e
    }
}

/// Handshake messages out of one direction's handshake records, which may split or join them: the messages the
/// caller wants are put together whole (at most `maxMessage` bytes), the others (certificates, tickets) are
/// skipped without being kept.
struct HandshakeReader {
    private var buffer: [UInt8] = []
    private var skip = 0
    static let maxMessage = 64 * 1024

    var buffered: Int { buffer.count }

    mutating func reset() {
        buffer = []
        skip = 0
    }

    /// Feeds handshake bytes: `message` gets each whole wanted message (header and body) and says whether to go on
    /// (false: what follows is not read under these keys, dropped). False when a wanted message is longer than
    /// `maxMessage`.
    mutating func feed(_ d: UnsafeRawBufferPointer, wants: (UInt8) -> Bool,
                       _ message: (UnsafeRawBufferPointer) -> Bool) -> Bool
    {
        var i = 0
        while i < d.count {
            if skip > 0 {
                let n = min(skip, d.count - i)
                skip -= n
                i += n
                continue
            }
            if buffer.isEmpty && d.count - i >= 4 {
                let total = 4 + (Int(d[i + 1]) << 16 | Int(d[i + 2]) << 8 | Int(d[i + 3]))
                if !wants(d[i]) {
                    skip = total
                    continue
                }
                guard total <= Self.maxMessage else { return false }
                if d.count - i >= total {  // whole here: read in place
                    let go = message(UnsafeRawBufferPointer(rebasing: d[i..<i + total]))
                    i += total
                    if !go { reset(); return true }
                    continue
                }
            }
            if buffer.count < 4 {
                let n = min(4 - buffer.count, d.count - i)
                buffer.append(contentsOf: d[i..<i + n])
                i += n
                guard buffer.count == 4 else { return true }
                if !wants(buffer[0]) {
                    skip = Int(buffer[1]) << 16 | Int(buffer[2]) << 8 | Int(buffer[3])
                    buffer.removeAll(keepingCapacity: true)
                    continue
                }
            }
            let total = 4 + (Int(buffer[1]) << 16 | Int(buffer[2]) << 8 | Int(buffer[3]))
            guard total <= Self.maxMessage else { return false }
            let n = min(total - buffer.count, d.count - i)
            buffer.append(contentsOf: d[i..<i + n])
            i += n
            guard buffer.count == total else { return true }
            var whole: [UInt8] = []
            swap(&whole, &buffer)
            let go = whole.withUnsafeBytes { message($0) }
            whole.removeAll(keepingCapacity: true)
            buffer = whole
            if !go { reset(); return true }
        }
        return true
    }
}

/// The parts of a ServerHello (and EncryptedExtensions) the decryption needs.
struct ServerHello {
    var version: UInt16
    var random: [UInt8]
    var cipherSuite: UInt16
    var alpn: String?
    var retry: Bool

    /// SHA-256("HelloRetryRequest"): the random of a HelloRetryRequest (RFC 8446 §4.1.3).
    static let retryRandom: [UInt8] = [
        0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
        0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
    ]

    /// A whole ServerHello message (type 2, 3-byte length, body); nil when it does not parse.
    static func parse(_ m: [UInt8]) -> ServerHello? { m.withUnsafeBytes { parse($0) } }

    static func parse(_ raw: UnsafeRawBufferPointer) -> ServerHello? {
        do {
            var r = Reader(raw, start: 4, end: raw.count)
            do throws(ClientHelloError) {
                var version = try r.u16()
                let random = Array(try r.bytes(32))
                try r.skip(Int(try r.u8()))
                let suite = try r.u16()
                try r.skip(1)
                var alpn: String?
                if r.remaining >= 2 {
                    let end = r.position + Int(try r.u16())
                    while r.position + 4 <= min(end, r.end) {
                        let type = try r.u16()
                        let length = Int(try r.u16())
                        var e = Reader(raw, start: r.position, end: r.position + length)
                        if type == 43, length == 2 { version = try e.u16() }
                        if type == 16 { alpn = try alpnName(&e) }
                        try r.skip(length)
                    }
                }
                return ServerHello(version: version, random: random, cipherSuite: suite, alpn: alpn,
                                   retry: random == retryRandom)
            } catch {
                return nil
            }
        }
    }

    /// The ALPN of an EncryptedExtensions message, when it has one.
    static func alpn(encryptedExtensions raw: UnsafeRawBufferPointer) -> String? {
        do {
            var r = Reader(raw, start: 4, end: raw.count)
            do throws(ClientHelloError) {
                let end = r.position + Int(try r.u16())
                while r.position + 4 <= min(end, r.end) {
                    let type = try r.u16()
                    let length = Int(try r.u16())
                    var e = Reader(raw, start: r.position, end: r.position + length)
                    if type == 16 { return try alpnName(&e) }
                    try r.skip(length)
                }
            } catch {}
            return nil
        }
    }

    private static func alpnName(_ e: inout Reader) throws(ClientHelloError) -> String {
        _ = try e.u16()
        let n = Int(try e.u8())
        return String(decoding: try e.bytes(n), as: UTF8.self)
    }
}

/// What the HTTPS tracker counted.
public struct HTTPSCounters: Sendable {
    /// TLS connections followed (both directions) for decryption.
    public var connections: UInt64 = 0
    public var tls13: UInt64 = 0
    public var tls12: UInt64 = 0
    /// Connections with at least one record opened.
    public var connectionsDecrypted: UInt64 = 0
    public var records: UInt64 = 0
    public var recordsDecrypted: UInt64 = 0
    public var bytesDecrypted: UInt64 = 0
    /// Connections that held records because their secrets had not arrived yet.
    public var connectionsHeld: UInt64 = 0
    /// Of those, connections decrypted once the secrets came.
    public var keysLate: UInt64 = 0
    /// Connections whose secrets did not come within the wait (or before they ended): server name only.
    public var keysNeverCame: UInt64 = 0
    /// Connections given up because a record failed authentication (a wrong key, damaged bytes).
    public var authenticationFailures: UInt64 = 0
    /// Connections whose cipher suite the tap does not decrypt (not AEAD).
    public var unsupportedSuite: UInt64 = 0
    /// Connections whose records stopped making sense as TLS.
    public var notTLS: UInt64 = 0
    /// Connections given up at a gap in either direction (record boundaries are lost).
    public var gaps: UInt64 = 0
    /// Connections given up because more records waited for their secrets than a connection may hold.
    public var heldOverflow: UInt64 = 0
    public var keyUpdates: UInt64 = 0
    /// TLS 1.3 0-RTT records skipped (under the early secret, which the tap does not use).
    public var earlyDataRecords: UInt64 = 0
    public var h2Connections: UInt64 = 0
    public var http1Connections: UInt64 = 0
    public var otherApplications: UInt64 = 0
    public var requests: UInt64 = 0
    public var responses: UInt64 = 0
    /// HTTP inside TLS that could not be read on (an HPACK error, a bad frame, unparseable HTTP/1.x).
    public var lostSync: UInt64 = 0
    public var tableFull: UInt64 = 0
    public var memcapSkips: UInt64 = 0
    public init() {}

    package mutating func merge(_ o: HTTPSCounters) {
        connections += o.connections; tls13 += o.tls13; tls12 += o.tls12
        connectionsDecrypted += o.connectionsDecrypted; records += o.records; recordsDecrypted += o.recordsDecrypted
        bytesDecrypted += o.bytesDecrypted; connectionsHeld += o.connectionsHeld; keysLate += o.keysLate
        keysNeverCame += o.keysNeverCame; authenticationFailures += o.authenticationFailures
        unsupportedSuite += o.unsupportedSuite; notTLS += o.notTLS; gaps += o.gaps; heldOverflow += o.heldOverflow
        keyUpdates += o.keyUpdates; earlyDataRecords += o.earlyDataRecords; h2Connections += o.h2Connections; http1Connections += o.http1Connections
        otherApplications += o.otherApplications; requests += o.requests; responses += o.responses
        lostSync += o.lostSync; tableFull += o.tableFull; memcapSkips += o.memcapSkips
    }
}
