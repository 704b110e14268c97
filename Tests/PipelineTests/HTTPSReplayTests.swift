import Capture
import Decode
import Extract
import PacketCraft
import StatetapTestSupport
import Testing
@testable import Pipeline

/// Crafted TLS 1.3 connections (`CraftedTLS13`) drive the HTTPS reader through the cases live traffic rarely
/// shows: 0-RTT data, a flow that replays another's ClientHello random, a server whose keys never come.
private func frames(_ t: CraftedTLS13, port: UInt16, _ steps: [TCPConversation.Step]) -> [[UInt8]] {
    TCPConversation(client: IPAddress("10.45.0.12")!, server: IPAddress("203.0.113.44")!, clientPort: port, serverPort: 443)
        .frames(steps)
}

/// Replays `frames` (in order) with `keyLog` in the key store; the web_link URLs and the HTTPS counters.
private func replay(_ frames: [[UInt8]], keyLog: String, configure: (inout PipelineConfiguration) -> Void = { _ in })
    throws -> (urls: [String], https: HTTPSCounters, keys: TLSKeyStore.Counters)
{
    let file = TempFile(".pcap")
    let w = try PcapWriter(path: file.path, linkType: .ethernet)
    for (i, f) in frames.enumerated() {
        try w.write(packet: f, timestampNanoseconds: 1_700_000_000_000_000_000 + UInt64(i) * 10_000, originalLength: f.count)
    }
    try w.close()
    let store = TLSKeyStore(clock: { 0 })
    let intake = store.add(text: Substring(keyLog))
    #expect(intake.rejected == 0)
    var configuration = PipelineConfiguration()
    configuration.tlsKeys = store
    configure(&configuration)
    let seen = CollectedEvents()
    let s = try ReplayPipeline(configuration: configuration).run(files: [file.path], onEvent: { seen.add($0) })
    let urls = seen.all.filter { $0.kind == .webLink }.sorted { $0.timestampNanoseconds < $1.timestampNanoseconds }
        .compactMap(\.url)
    return (urls, s.counters.https, store.counters)
}

@Suite("HTTPS read from crafted TLS 1.3 connections (records sealed with known secrets)")
struct HTTPSReplayTests {
    @Test("a request and its response inside TLS 1.3 become a web_link; the secrets go when the connection ends")
    func plain() throws {
        let t = CraftedTLS13(seed: 1)
        let r = try replay(frames(t, port: 40001, t.http1(path: "/a.css")), keyLog: t.keyLog())
        #expect(r.urls == ["https://tls.example/a.css"])
        #expect(r.https.connectionsDecrypted == 1 && r.https.authenticationFailures == 0)
        #expect(r.keys.removedEnded == 1)
    }

    @Test("0-RTT records (before and after the ServerHello, under the early secret) are skipped, not failures")
    func earlyData() throws {
        var t = CraftedTLS13(seed: 2)
        t.earlyData = true
        // The handshake secret is logged: before, an early record that opened under neither key was a wrong key.
        let r = try replay(frames(t, port: 40002, t.http1(path: "/after-0rtt", earlyRecords: 4)), keyLog: t.keyLog(handshake: true))
        #expect(r.urls == ["https://tls.example/after-0rtt"])
        #expect(r.https.earlyDataRecords == 4)
        #expect(r.https.authenticationFailures == 0 && r.https.notTLS == 0)
    }

    @Test("a flow that replays a connection's ClientHello random and ends cannot take that connection's secrets")
    func spoofedRandom() throws {
        let victim = CraftedTLS13(seed: 3)
        // The spoof: the victim's ClientHello, then FIN, all before the victim's own connection.
        let all = frames(victim, port: 40099, [.client(victim.clientHello)]) + frames(victim, port: 40003, victim.http1(path: "/victim"))
        let r = try replay(all, keyLog: victim.keyLog())
        #expect(r.urls == ["https://tls.example/victim"])
        #expect(r.https.connectionsDecrypted == 1)
        #expect(r.keys.removedEnded == 1)
    }

    @Test("a server no connection had keys for holds little while it waits: given up as held_overflow, not memcap")
    func unkeyedServerHoldsLittle() throws {
        let t = CraftedTLS13(seed: 4)
        // No secrets at all for it, and half a megabyte of response: past the allowance for unkeyed servers.
        let r = try replay(frames(t, port: 40004, t.http1(path: "/big", responseBody: 512 * 1024)), keyLog: "") {
            $0.tlsMaxHeldBytes = 8 << 20
        }
        #expect(r.urls.isEmpty)
        #expect(r.https.heldOverflow == 1 && r.https.keysNeverCame == 0)
        #expect(HTTPSTracker.unkeyedHeldBytes < 512 * 1024)
    }

    @Test("once a server is known to be keyed, its next connection may hold up to --tls-max-held")
    func keyedServerHoldsMore() throws {
        let first = CraftedTLS13(seed: 5), second = CraftedTLS13(seed: 6)
        // The second's secrets never come: it holds its whole response (more than the unkeyed allowance) and is
        // given up at the end of the run as keys_never_came, not held_overflow.
        let all = frames(first, port: 40005, first.http1(path: "/first"))
            + frames(second, port: 40006, second.http1(path: "/second", responseBody: 512 * 1024))
        let r = try replay(all, keyLog: first.keyLog())
        #expect(r.urls == ["https://tls.example/first"])
        #expect(r.https.heldOverflow == 0 && r.https.keysNeverCame == 1)
    }

    @Test("HTTP/2 inside crafted TLS 1.3: every stream's request and response, bodies skipped")
    func h2() throws {
        let t = CraftedTLS13(seed: 7)
        let paths = (0..<12).map { "/objects/\($0).bin" }
        let r = try replay(frames(t, port: 40007, t.h2(authority: "cdn.example", paths: paths, responseBody: 40_000)), keyLog: t.keyLog())
        #expect(r.urls == paths.map { "https://cdn.example" + $0 })
        #expect(r.https.h2Connections == 1 && r.https.responses == 12 && r.https.lostSync == 0)
    }
}
