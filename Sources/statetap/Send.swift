import ArgumentParser
import Capture
import Foundation
import Logging
import XDPPrograms

struct Send: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send the frames of a capture file out of an interface, at high or exact rates (traffic generator, root).",
        discussion: """
            Uses BPF_PROG_RUN with live frames: the kernel builds each frame and an XDP program redirects it out \
            of --interface. Made for veth pairs: the frames arrive on the peer, which must run an XDP program \
            in native mode (statetap capture --xdp-mode native), or the kernel drops them there. Frames are \
            sent in file order, each --repeat times in a row, the whole file --loops times. With --rate the XDP \
            program itself paces the frames (a smooth rate, not bursts and sleeps). Each frame costs the kernel a \
            few milliseconds of setup per call: for high rates use few distinct frames and a large --repeat. \
            Ethernet captures only; frames over 3000 bytes are skipped (counted).

            Make a capture with `statetap generate FILE`, or use any Ethernet pcap.
            """)

    @Option(name: .shortAndLong, help: "Interface to send out of (a veth; frames arrive on its peer).")
    var interface: String

    @Argument(help: "Capture file whose frames are sent (pcap or pcapng, Ethernet).")
    var file: String

    @Option(help: "Copies of each frame sent in a row.")
    var `repeat`: UInt64 = 1

    @Option(help: "Times the whole file is sent.")
    var loops = 1

    @Option(help: "Frames per second at most (0: as fast as the kernel goes).")
    var rate: Double = 0

    @Option(help: "Frames the kernel builds per batch (1-256).")
    var batch: UInt32 = 64

    @Flag(help: "Print the result as one JSON object.")
    var json = false

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard (1...1 << 32).contains(Int(`repeat`)) else { throw ValidationError("--repeat must be 1...4294967296") }
        guard loops >= 1 else { throw ValidationError("--loops must be at least 1") }
        guard rate == 0 || (rate >= 1 && rate <= 1e9) else { throw ValidationError("--rate must be 0 (unpaced) or 1...1e9 frames/s") }
        guard (1...256).contains(batch) else { throw ValidationError("--batch must be 1...256") }
        guard FileManager.default.isReadableFile(atPath: file) else {
            throw ValidationError("cannot read capture file '\(file)'")
        }
    }

    func run() throws {
        let log = global.bootstrap()
        XDPPrograms.setLibbpfMessages(enabled: global.logLevel <= .debug)
        let reader = try CaptureFileReader(path: file)
        guard reader.linkType == .ethernet else {
            throw ValidationError("\(file) is \(reader.linkTypeName), not Ethernet: only Ethernet frames can be sent")
        }
        var frames: [[UInt8]] = []
        var skipped = 0
        loop: while true {
            switch reader.next() {
            case .end: break loop
            case .error(let m): throw ValidationError("\(file): \(m)")
            case .packet(let bytes, _, _):
                if bytes.count < 14 || bytes.count > 3000 { skipped += 1 } else { frames.append(Array(bytes)) }
            }
        }
        guard !frames.isEmpty else { throw ValidationError("\(file) has no frame that can be sent") }
        let generator: TrafficGenerator
        do { generator = try TrafficGenerator(interface: interface, rate: rate > 0 ? rate : nil) } catch {
            log.error("\(error)")
            throw ExitCode(1)
        }
        generator.batchSize = batch
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<loops {
            for f in frames {
                try f.withUnsafeBytes { try generator.send(frame: $0, count: `repeat`) }
            }
        }
        let sent = try generator.sent()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let pps = seconds > 0 ? Double(sent) / seconds : 0
        if json {
            print("{\"frames_sent\":\(sent),\"distinct_frames\":\(frames.count),\"skipped\":\(skipped),"
                  + "\"seconds\":\((seconds * 1000).rounded() / 1000),\"frames_per_second\":\(Int(pps))}")
        } else {
            print("sent \(sent) frames (\(frames.count) distinct, \(skipped) skipped) out of \(interface) in "
                  + String(format: "%.3f s: %.0f frames/s", seconds, pps))
        }
    }
}
