import ArgumentParser
import Extract
import Logging
import Pipeline
import Rings
import Tap

/// HTTPS reading flags shared by `replay` and `capture`: where the TLS secrets come from and how long a
/// connection waits for them.
struct TLSOptions: ParsableArguments {
    @Option(name: .customLong("tls-keylog"),
            help: ArgumentHelp("The edge proxy's TLS key log (SSLKEYLOGFILE format), to read HTTP/2 and HTTP/1.1 inside TLS.",
                               discussion: "Followed like tail -F: lines appended are read as they come, a rotated or truncated file is read again. replay reads it whole before the files. The secrets stay in memory, are never journaled or logged, and go when their connection ends.",
                               valueName: "file"))
    var tlsKeylog: String?

    @Option(help: "Seconds a TLS connection's records wait for its secrets before it is read for its server name only.")
    var tlsKeyWait: Double = 5

    @Option(help: "Megabytes of records one TLS connection may hold while its secrets are awaited (past it: held_overflow, server name only); charged to --reassembly-memcap.")
    var tlsMaxHeld: Int = 8

    @Option(help: "Milliseconds between reads of --tls-keylog (records wait, held, until their secrets are read).")
    var tlsKeylogInterval: Int = 10

    @Option(help: "TLS connections whose secrets are held at most (the oldest are evicted beyond, counted).")
    var tlsMaxKeys: Int = 262_144

    @Flag(help: "Read HTTPS with secrets posted to the control plane (POST /v1/tls-keys) even without --tls-keylog.")
    var tlsKeysFromAPI = false

    func validate() throws {
        guard tlsKeyWait >= 0, tlsKeyWait <= 3600 else {
            throw ValidationError("--tls-key-wait must be 0...3600 seconds, got \(tlsKeyWait)")
        }
        guard (1...4096).contains(tlsMaxHeld) else { throw ValidationError("--tls-max-held must be 1...4096 MB, got \(tlsMaxHeld)") }
        guard (1...10_000).contains(tlsKeylogInterval) else {
            throw ValidationError("--tls-keylog-interval must be 1...10000 ms, got \(tlsKeylogInterval)")
        }
        guard (1...(1 << 24)).contains(tlsMaxKeys) else {
            throw ValidationError("--tls-max-keys must be 1...16777216, got \(tlsMaxKeys)")
        }
    }

    /// Checks what needs the other option groups: secrets from the API need the API.
    func validate(serving: Bool) throws {
        if tlsKeysFromAPI && !serving {
            throw ValidationError("--tls-keys-from-api needs --serve (the secrets come by POST /v1/tls-keys)")
        }
    }

    /// The key store and the follower of the key log, when HTTPS is read; sets the pipeline's configuration.
    func make(_ configuration: inout PipelineConfiguration, log: Logger) throws -> (TLSKeyStore, TLSKeyLogFollower?)? {
        guard tlsKeylog != nil || tlsKeysFromAPI else { return nil }
        let store = TLSKeyStore(limits: .init(maxConnections: tlsMaxKeys), clock: { monotonicNanoseconds() })
        configuration.tlsKeys = store
        configuration.tlsKeyWaitNanoseconds = UInt64(tlsKeyWait * 1e9)
        configuration.tlsMaxHeldBytes = tlsMaxHeld << 20
        guard let tlsKeylog else { return (store, nil) }
        let follower = TLSKeyLogFollower(path: tlsKeylog, store: store,
                                         intervalNanoseconds: UInt64(tlsKeylogInterval) * 1_000_000, log: log)
        do { try follower.check() } catch { throw ValidationError(error.description) }
        let n = follower.poll()
        log.info("TLS key log '\(tlsKeylog)': \(n) secret(s) read; following it")
        return (store, follower)
    }
}
