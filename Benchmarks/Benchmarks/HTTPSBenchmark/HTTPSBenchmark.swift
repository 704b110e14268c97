// HTTPS read passively with the edge proxy's key log: ReplayPipeline.run(files:) over a capture of crafted TLS 1.3
// connections (TLS_AES_128_GCM_SHA256) carrying HTTP/2, against two references measured in the same run:
//
// - `HTTPS.aes128gcm-reference`: the same capture's application records opened with swift-crypto's AES-128-GCM
//   directly, in memory (keys derived once): the decryption ceiling, nothing else done.
// - `HTTPS.replay-without-keys`: the same capture replayed with no key source (server names only).
//
// The capture: 64 connections, each 16 h2 requests answered with 64 KB bodies (64 MB of response bodies, 1024
// web_links), in 1400-byte segments, generated at setup into /tmp. Each iteration replays it whole (a new key store
// each time: secrets go when their connections end). `plaintextMBps` is plaintext MB (10^6 bytes) per second of
// wall clock around the run (the reference: around the opening); compare the three within one run, the machines
// are shared. The replay checks its figures (every response read, no failure) or fails the benchmark.

import Benchmark
import Capture
import Crypto
import Decode
import Extract
import Foundation
import PacketCraft
import Pipeline
import StatetapTestSupport

let connections = 64
let requestsPerConnection = 16
let bodyBytes = 64 * 1024

struct HTTPSBenchError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// The crafted traffic: each connection's steps and its key-log lines.
struct Traffic {
    var conversations: [(CraftedTLS13, [TCPConversation.Step])] = []
    var keyLog = ""
    var plaintextBytes = 0

    init() {
        for i in 0..<connections {
            let t = CraftedTLS13(seed: UInt8(i))
            let paths = (0..<requestsPerConnection).map { "/c\(i)/object-\($0).bin" }
            conversations.append((t, t.h2(authority: "cdn.example", paths: paths, responseBody: bodyBytes)))
            keyLog += t.keyLog()
        }
    }

    /// Writes the capture (once: reused when it is there).
    func ensureCapture() throws -> String {
        let path = "/tmp/statetap-bench-https-v1.pcap"
        if FileManager.default.isReadableFile(atPath: path) { return path }
        let temporary = path + ".\(getpid()).tmp"
        let writer = try PcapWriter(path: temporary, linkType: .ethernet)
        var ts: UInt64 = 1_700_000_000_000_000_000
        for (i, (_, steps)) in conversations.enumerated() {
            let tcp = TCPConversation(client: IPAddress("10.45.\(i / 200).\(i % 200 + 2)")!,
                                      server: IPAddress("203.0.113.44")!, clientPort: UInt16(40000 + i), serverPort: 443)
            for f in tcp.frames(steps) {
                try writer.write(packet: f, timestampNanoseconds: ts)
                ts += 2_000
            }
        }
        try writer.close()
        guard rename(temporary, path) == 0 else { throw HTTPSBenchError(message: "cannot rename \(temporary)") }
        return path
    }
}

let plaintextMBps = BenchmarkMetric.custom("plaintextMBps", polarity: .prefersLarger, useScalingFactor: false)

func replay(_ path: String, keyLog: String?) throws -> (PipelineSummary, Duration) {
    var configuration = PipelineConfiguration()
    if let keyLog {
        let store = TLSKeyStore(clock: { 0 })
        _ = store.add(text: Substring(keyLog))
        configuration.tlsKeys = store
    }
    let clock = ContinuousClock()
    let start = clock.now
    let summary = try ReplayPipeline(configuration: configuration).run(files: [path], onEvent: { blackHole($0) })
    return (summary, clock.now - start)
}

func megabytesPerSecond(_ bytes: Int, _ d: Duration) -> Int {
    let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    return Int(Double(bytes) / 1e6 / max(seconds, 1e-9))
}

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, plaintextMBps], timeUnits: .milliseconds, warmupIterations: 1,
        maxDuration: .seconds(20), maxIterations: 8)
    let traffic = Traffic()

    Benchmark("HTTPS.replay-with-keys", configuration: configuration) { benchmark, path in
        for _ in benchmark.scaledIterations {
            let (s, d) = try replay(path, keyLog: traffic.keyLog)
            let h = s.counters.https
            guard h.responses == UInt64(connections * requestsPerConnection), h.authenticationFailures == 0,
                  h.connectionsDecrypted == UInt64(connections), h.lostSync == 0
            else { throw HTTPSBenchError(message: "the replay did not read every response: \(h)") }
            benchmark.measurement(plaintextMBps, megabytesPerSecond(Int(h.bytesDecrypted), d))
        }
    } setup: {
        try traffic.ensureCapture()
    }

    Benchmark("HTTPS.replay-without-keys", configuration: configuration) { benchmark, path in
        for _ in benchmark.scaledIterations {
            let (s, d) = try replay(path, keyLog: nil)
            guard s.counters.tls.clientHellos == UInt64(connections) else {
                throw HTTPSBenchError(message: "\(s.counters.tls.clientHellos) ClientHellos of \(connections)")
            }
            // The same plaintext the keyed replay reads, for a figure to compare: what the capture carries.
            let bytes = connections * requestsPerConnection * bodyBytes
            benchmark.measurement(plaintextMBps, megabytesPerSecond(bytes, d))
        }
    } setup: {
        try traffic.ensureCapture()
    }

    Benchmark("HTTPS.aes128gcm-reference", configuration: configuration) { benchmark in
        let keys = traffic.conversations.map { (t, _) in
            (SymmetricKey(data: TLSKeySchedule.expandLabel(.sha256, secret: t.clientSecret, label: "key", length: 16)),
             TLSKeySchedule.expandLabel(.sha256, secret: t.clientSecret, label: "iv", length: 12),
             SymmetricKey(data: TLSKeySchedule.expandLabel(.sha256, secret: t.serverSecret, label: "key", length: 16)),
             TLSKeySchedule.expandLabel(.sha256, secret: t.serverSecret, label: "iv", length: 12))
        }
        for _ in benchmark.scaledIterations {
            let clock = ContinuousClock()
            let start = clock.now
            var total = 0
            for (i, (_, steps)) in traffic.conversations.enumerated() {
                total += openRecordsReference(steps, clientKey: keys[i].0, clientIV: keys[i].1, serverKey: keys[i].2,
                                              serverIV: keys[i].3)
            }
            let d = clock.now - start
            guard total > connections * requestsPerConnection * bodyBytes else {
                throw HTTPSBenchError(message: "the reference opened \(total) bytes")
            }
            benchmark.measurement(plaintextMBps, megabytesPerSecond(total, d))
        }
    }
}
