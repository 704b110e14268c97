// Proves the system-library modules link and behave, and that the plugin-built XDP object is embedded and sane.
// Nothing here touches the kernel: the BPF object is opened (parsed) by libbpf, never loaded.
import CLZ4
import CPcap
import CStatetapShims
import CXDP
import Testing
import XDPPrograms

@Suite("System libraries")
struct SystemLibraryTests {
    // MARK: - liblz4 (frames with content checksum, as the journal writes them)

    private static func compressFrame(_ input: [UInt8]) throws -> [UInt8] {
        var preferences = LZ4F_preferences_t()
        preferences.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled
        preferences.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled
        let bound = LZ4F_compressFrameBound(input.count, &preferences)
        var output = [UInt8](repeating: 0, count: bound)
        let written = input.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { destination in
                LZ4F_compressFrame(destination.baseAddress, destination.count,
                                   source.baseAddress, source.count, &preferences)
            }
        }
        try #require(LZ4F_isError(written) == 0, "LZ4F_compressFrame: \(String(cString: LZ4F_getErrorName(written)))")
        output.removeSubrange(written...)
        return output
    }

    /// Decodes one whole frame; returns the LZ4F error name on failure.
    private static func decompressFrame(_ frame: [UInt8], capacity: Int) -> Result<[UInt8], LZ4FrameError> {
        var context: OpaquePointer?
        let created = LZ4F_createDecompressionContext(&context, UInt32(LZ4F_VERSION))
        guard LZ4F_isError(created) == 0, let context else {
            return .failure(LZ4FrameError(name: String(cString: LZ4F_getErrorName(created))))
        }
        defer { _ = LZ4F_freeDecompressionContext(context) }

        var output = [UInt8](repeating: 0, count: capacity)
        var consumed = 0
        var produced = 0
        while true {
            var sourceSize = frame.count - consumed
            var destinationSize = capacity - produced
            let hint = frame.withUnsafeBytes { source in
                output.withUnsafeMutableBytes { destination in
                    LZ4F_decompress(context, destination.baseAddress! + produced, &destinationSize,
                                    source.baseAddress! + consumed, &sourceSize, nil)
                }
            }
            if LZ4F_isError(hint) != 0 {
                return .failure(LZ4FrameError(name: String(cString: LZ4F_getErrorName(hint))))
            }
            consumed += sourceSize
            produced += destinationSize
            if hint == 0 { break }  // frame complete, checksums verified
            if sourceSize == 0 && destinationSize == 0 {
                return .failure(LZ4FrameError(name: "truncated frame"))
            }
        }
        output.removeSubrange(produced...)
        return .success(output)
    }

    struct LZ4FrameError: Error, Equatable {
        let name: String
    }

    private static let sample: [UInt8] = {
        // Compressible but not trivial: repeated text plus a counter pattern.
        let text = Array("statetap keeps edge applications warm across edge nodes. ".utf8)
        var bytes: [UInt8] = []
        for index in 0..<200 {
            bytes += text
            bytes.append(UInt8(truncatingIfNeeded: index &* 31))
        }
        return bytes
    }()

    @Test func lz4FrameRoundTripWithContentChecksum() throws {
        let frame = try Self.compressFrame(Self.sample)
        #expect(frame.count < Self.sample.count, "repetitive input must compress")
        // Magic number 0x184D2204 (little-endian), then FLG: bit 2 = content checksum, bit 4 = block checksum.
        #expect(Array(frame.prefix(4)) == [0x04, 0x22, 0x4D, 0x18])
        #expect(frame[4] & 0b0000_0100 != 0, "content checksum flag must be set")
        #expect(frame[4] & 0b0001_0000 != 0, "block checksum flag must be set")

        let decoded = try Self.decompressFrame(frame, capacity: Self.sample.count).get()
        #expect(decoded == Self.sample)
    }

    @Test func lz4ContentChecksumDetectsCorruption() throws {
        var frame = try Self.compressFrame(Self.sample)
        frame[frame.count - 1] ^= 0xFF  // last byte belongs to the 32-bit content checksum
        let result = Self.decompressFrame(frame, capacity: Self.sample.count)
        guard case .failure(let error) = result else {
            Issue.record("corrupted content checksum was accepted")
            return
        }
        #expect(error.name.lowercased().contains("checksum"), "unexpected error: \(error.name)")
    }

    // MARK: - libpcap

    @Test func pcapLibraryVersion() throws {
        let version = String(cString: try #require(pcap_lib_version()))
        #expect(version.contains("libpcap"), "got \(version)")
    }

    // MARK: - libbpf / libxdp

    @Test func libbpfIsAtLeastVersionOne() {
        #expect(libbpf_major_version() >= 1)
    }

    @Test func unknownObjectHasNoPath() {
        #expect(XDPPrograms.objectPath(named: "no-such-program") == nil)
    }

    @Test func steerObjectOpensWithExpectedProgramAndMaps() throws {
        let path = try #require(XDPPrograms.objectPath(named: XDPPrograms.steerObjectName),
                                "steer.bpf.o is not embedded in XDPPrograms")
        #expect(path.hasSuffix("/steer.bpf.o"))

        // Open (parse ELF + BTF) only; loading would need CAP_BPF and would touch the kernel.
        let object = try #require(bpf_object__open_file(path, nil), "bpf_object__open_file failed for \(path)")
        defer { bpf_object__close(object) }

        let program = try #require(bpf_object__find_program_by_name(object, "statetap_steer"))
        #expect(bpf_program__type(program) == BPF_PROG_TYPE_XDP)
        #expect(String(cString: bpf_program__section_name(program)) == "xdp")

        let xsks = try #require(bpf_object__find_map_by_name(object, "xsks_map"))
        #expect(bpf_map__type(xsks) == BPF_MAP_TYPE_XSKMAP)
        #expect(bpf_map__max_entries(xsks) == 64)  // STATETAP_XSKS_MAX_ENTRIES

        let counters = try #require(bpf_object__find_map_by_name(object, "xdp_counters"))
        #expect(bpf_map__type(counters) == BPF_MAP_TYPE_PERCPU_ARRAY)
        #expect(bpf_map__max_entries(counters) == STATETAP_CTR_MAX.rawValue)  // the header shared with Swift
        #expect(bpf_map__value_size(counters) == 8)

        // `const volatile struct statetap_steer_config config` is the object's .rodata (load-time configuration).
        var rodataFound = false
        var map = bpf_object__next_map(object, nil)
        while let current = map {
            if bpf_map__is_internal(current), String(cString: bpf_map__name(current)).hasSuffix(".rodata") {
                rodataFound = true
                var size = 0
                #expect(bpf_map__initial_value(current, &size) != nil)
                #expect(size == MemoryLayout<statetap_steer_config>.size)
            }
            map = bpf_object__next_map(object, current)
        }
        #expect(rodataFound, ".rodata (steer_all) missing")
    }
}
