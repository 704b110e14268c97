// swift-tools-version: 6.1
// statetap: a kernel-bypass packet pipeline that keeps mobile users' edge applications warm across edge nodes.
import PackageDescription

/// Hot modules (rings, decode, capture, flows, pipeline) are built with the same release settings; they use no
/// Foundation, no async and no existentials on the per-packet path.
/// Exclusivity is checked at compile time everywhere; the run-time checks on class properties (swift_beginAccess,
/// a thread-local access set per access) cost ~20% of the live capture loop (perf), so release builds of the hot
/// modules leave them out, as SwiftNIO-style hot paths do. Debug builds and the tests keep them.
let hotSwiftSettings: [SwiftSetting] = [
    .unsafeFlags(["-cross-module-optimization", "-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "statetap",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "statetap", targets: ["statetap"]),
        .library(name: "StatetapPipeline", targets: ["Pipeline"]),
        .library(name: "PacketCraft", targets: ["PacketCraft"]),
        // For Benchmarks/ (a separate package): the hot modules, directly.
        .library(name: "StatetapDecode", targets: ["Decode"]),
        .library(name: "StatetapRings", targets: ["Rings"]),
        .library(name: "StatetapCapture", targets: ["Capture"]),
        .library(name: "StatetapFlows", targets: ["Flows"]),
        .library(name: "StatetapExtract", targets: ["Extract"]),
        .library(name: "StatetapJournal", targets: ["Journal"]),
        // The control plane's request types and their readers, for Fuzz/ (no server stack).
        .library(name: "StatetapMigrationAPI", targets: ["MigrationAPI"]),
        // The RFC 9001 / RFC 9369 Initial vectors, shared with Benchmarks/ and Fuzz/.
        .library(name: "StatetapTestSupport", targets: ["StatetapTestSupport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.0.0"),
        // The control plane and the agent (Migration): HTTP server, HTTP client, metrics. Cold code only.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.20.0"),
    ],
    targets: [
        // System libraries, found with pkg-config.
        .systemLibrary(name: "CPcap", path: "CModules/CPcap", pkgConfig: "libpcap",
                       providers: [.apt(["libpcap-dev"])]),
        .systemLibrary(name: "CXDP", path: "CModules/CXDP", pkgConfig: "libxdp",
                       providers: [.apt(["libxdp-dev", "libbpf-dev"])]),
        .systemLibrary(name: "CLZ4", path: "CModules/CLZ4", pkgConfig: "liblz4",
                       providers: [.apt(["liblz4-dev"])]),
        // HPACK (HTTP/2 header blocks read from decrypted TLS): libnghttp2's inflater.
        .systemLibrary(name: "CNghttp2", path: "CModules/CNghttp2", pkgConfig: "libnghttp2",
                       providers: [.apt(["libnghttp2-dev"])]),

        // C shims for what the importer cannot take (_GNU_SOURCE functions, macros); symbols prefixed statetap_.
        .target(name: "CStatetapShims", path: "CModules/CStatetapShims"),

        // Compiles bpf/*.bpf.c with clang -target bpf; the objects become resources of XDPPrograms.
        .plugin(name: "BPFCompilerPlugin", capability: .buildTool(), path: "Plugins/BPFCompilerPlugin"),

        // Lock-free single-producer/single-consumer rings and the threads that run on them (pinned POSIX threads,
        // backoff, clocks).
        .target(name: "Rings", dependencies: ["CStatetapShims"], swiftSettings: hotSwiftSettings),
        // L2-L4 and tunnel header decoding over borrowed bytes. Imports nothing of ours.
        .target(name: "Decode", swiftSettings: hotSwiftSettings),
        // Capture files in and out (libpcap reader, pcap/pcapng writers), the frame pool and the Frame ownership token.
        .target(name: "Capture", dependencies: ["CPcap", "Decode"], swiftSettings: hotSwiftSettings),
        // Flow table, client/server orientation, device attribution, IP fragment reassembly.
        .target(name: "Flows", dependencies: ["Decode"], swiftSettings: hotSwiftSettings),
        // Application state extraction: the HTTP, TLS and QUIC parsers (QUIC Initial decryption with swift-crypto),
        // the per-flow trackers that drive them, the events they publish and the events' encodings (JSON, fields).
        .target(name: "Extract", dependencies: [
            "Decode", "Flows", "CNghttp2",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "CryptoExtras", package: "swift-crypto"),
        ], swiftSettings: hotSwiftSettings),
        // Wiring only: sources (files, AF_XDP) -> rings -> decode workers -> sinks; threads and statistics.
        .target(name: "Pipeline", dependencies: ["Rings", "Decode", "Capture", "Flows", "XDPPrograms", "XDPCapture", "Extract",
                                      "CStatetapShims"],
                swiftSettings: hotSwiftSettings),
        // The state journal (LZ4 frame segments, recovery, indexes) and the per-device state store built from it.
        // Not on the packet path, but the journal thread's append loop is hot (every event, up to 1 M/s): the hot
        // modules' release settings (its run-time exclusivity checks were ~2% of that thread, perf).
        .target(name: "Journal", dependencies: ["Extract", "Rings", "Decode", "CLZ4"], swiftSettings: hotSwiftSettings),
        // Migration: the control plane (signals in, plans, transfers), the planner, and the destination edge's
        // agent that pre-fetches through its cache. Async, Foundation and HTTP live here, far from the packet path.
        // The API's bodies and the strict readers that validate them: Foundation and Decode only.
        .target(name: "MigrationAPI", dependencies: ["Decode"]),
        .target(name: "Migration", dependencies: [
            "MigrationAPI", "Journal", "Extract", "Rings", "Decode",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            // The API's connection guard sits after Hummingbird's HTTP decoding: HTTPTypes request parts.
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // A running tap: the journal session (open, store rebuilt at start, summary), the JSON Lines event writer,
        // the capture as a service, the /metrics samples. What `replay`, `capture` (and a fleet) compose.
        .target(name: "Tap", dependencies: [
            "Pipeline", "Journal", "Migration", "Extract", "Rings", "XDPCapture", "XDPPrograms",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The migration benchmark (`statetap bench-migration`): a real agent and control plane on loopback, driven
        // against an edge cache. Off the data path: a tool, like PacketCraft and Generator.
        .target(name: "MigrationBenchmark", dependencies: [
            "Migration", "MigrationAPI", "Journal", "Extract", "Decode",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // Packet builder and synthetic traffic: the demo capture, tests and benchmarks all use it.
        .target(name: "PacketCraft", dependencies: ["Decode"]),
        // Compiled XDP programs, embedded as resources: loading, BPF_PROG_RUN, the live-frames traffic generator.
        .target(name: "XDPPrograms", dependencies: ["CXDP", "CStatetapShims"], plugins: ["BPFCompilerPlugin"]),
        // The traffic generator (`statetap send`): live-frames BPF_PROG_RUN, AF_XDP TX or AF_PACKET, exact counts and
        // rates, for labs, tests and benchmarks.
        .target(name: "Generator", dependencies: ["CXDP", "CStatetapShims", "XDPPrograms"]),
        // AF_XDP: UMEM, sockets and rings per rx queue, the bpf_link attachment, kernel statistics.
        .target(name: "XDPCapture", dependencies: ["CXDP", "CStatetapShims", "XDPPrograms"],
                swiftSettings: hotSwiftSettings),

        .executableTarget(
            name: "statetap",
            dependencies: [
                "Pipeline", "PacketCraft", "Capture", "Decode", "Extract", "Rings", "XDPCapture", "XDPPrograms", "Generator",
                "Journal", "Migration", "Tap", "MigrationBenchmark",
                "MigrationAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]),

        // Reads docs/architecture.md, this file and every import under Sources/: the arrows go one way.
        .testTarget(name: "ArchitectureTests"),
        .testTarget(name: "RingsTests", dependencies: ["Rings"]),
        .testTarget(name: "DecodeTests", dependencies: ["Decode", "PacketCraft", "Capture"]),
        .testTarget(name: "FlowsTests", dependencies: ["Flows", "Decode", "PacketCraft"]),
        // RFC test vectors and other data several test targets share.
        .target(name: "StatetapTestSupport", dependencies: [
            "Extract", "PacketCraft",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "CryptoExtras", package: "swift-crypto"),
        ], path: "Tests/Support"),
        .testTarget(name: "ExtractTests", dependencies: ["Extract", "Decode", "StatetapTestSupport"]),
        .testTarget(name: "MigrationTests", dependencies: [
            "Migration", "MigrationAPI", "Journal", "Extract", "Rings", "Decode",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
        .testTarget(name: "JournalTests", dependencies: ["Journal", "Extract", "Rings", "Decode"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "Extract", "Flows", "Decode", "Capture", "PacketCraft",
                                                          "StatetapTestSupport"]),
        // Runs the built `statetap` binary: flags, messages, exit codes and the JSON summary as users see them.
        .testTarget(name: "CLITests", dependencies: ["statetap", "PacketCraft", "Decode"]),
        .testTarget(name: "GeneratorTests", dependencies: ["Generator"]),
        .testTarget(name: "SystemLibraryTests", dependencies: ["CXDP", "CLZ4", "CPcap", "XDPPrograms", "CStatetapShims"]),
        // Needs root (BPF): loads the XDP program and runs it on crafted frames with BPF_PROG_RUN.
        // Runs the built binary in network namespaces it creates: live capture on veth pairs, errors, kill -9.
        .testTarget(name: "PrivilegedTests", dependencies: ["statetap", "XDPPrograms", "PacketCraft", "Decode", "Capture"]),
    ],
    swiftLanguageModes: [.v6]
)
