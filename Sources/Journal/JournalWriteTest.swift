import Decode
import Extract
import Rings

/// The hidden `statetap journal write-test`: appends numbered (or realistic) records and reports the acknowledged
/// count as it grows. The crash tests kill it with SIGKILL at random moments and check that every acknowledged
/// record survives; the journal benchmarks read its rates.
public struct JournalWriteTest: Sendable {
    public var records: Int
    /// Bytes of filler in each numbered record's URL.
    public var padding = 200
    /// Realistic records (`SampleRecords`) instead of numbered ones.
    public var sample = false
    /// With `sample`: build this many records first and append them in turn (the writer alone is measured). When at
    /// least `records`, each is appended once and moved, as the pipeline's sink hands its events over; otherwise
    /// each append is a copy.
    public var prebuilt = 0

    public init(records: Int) { self.records = records }

    /// Appends to `writer` (started here, finished before returning); `emit` gets each line of the report
    /// (`acked N`, `diskfull dropped N`, the rates, `done …`) as it happens.
    public func run(_ writer: JournalWriter, emit: (String) -> Void) {
        writer.start()
        let device = IPAddress("10.99.0.1")!
        let server = IPAddress("198.51.100.1")!
        let filler = String(repeating: "x", count: padding)
        var lastAck: UInt64 = 0
        var samples = SampleRecords()
        var ready: [JournalRecord?] = sample && prebuilt > 0 ? (0..<prebuilt).map { samples.record($0) } : []
        let moved = prebuilt >= records
        let started = monotonicNanoseconds()
        for i in 0..<records {
            if !ready.isEmpty {
                if moved {
                    writer.append(ready[i].take()!)
                } else {
                    writer.append(ready[i % ready.count]!)
                }
                continue
            }
            var e = StateEvent(kind: .webLink, timestampNanoseconds: 1_700_000_000_000_000_000 + UInt64(i),
                               device: device, client: device, clientPort: 40000, server: server, serverPort: 80,
                               vlans: [], teid: nil)
            e.method = "GET"
            e.url = "http://test.example/\(i)?\(filler)"
            e.host = "test.example"
            writer.append(sample ? samples.record(i) : .event(e))
            if i % 64 == 0 {
                let s = writer.currentStats
                if s.acknowledged != lastAck { lastAck = s.acknowledged; emit("acked \(lastAck)") }
                if s.diskFull { emit("diskfull dropped \(s.droppedDiskFull)") }
            }
        }
        writer.finish()
        let seconds = Double(monotonicNanoseconds() &- started) / 1e9
        let s = writer.currentStats
        emit("acked \(s.acknowledged)")
        emit("appended \(records) in \(seconds) s: \(Int(Double(records) / seconds)) records/s")
        let cpu = Double(s.threadCPUNanoseconds) / 1e9
        emit("journal thread: \(cpu) CPU-s: \(Int(Double(s.written) / max(cpu, 1e-9))) records per CPU-second")
        emit("done written \(s.written) dropped_disk_full \(s.droppedDiskFull) episodes \(s.diskFullEpisodes)")
    }
}
