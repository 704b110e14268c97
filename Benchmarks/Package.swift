// swift-tools-version: 6.1
// statetap's benchmarks: a package of its own, so the main package does not depend on the benchmark tooling.
// Run from this folder with `swift package benchmark` (release build); see README.md.
import PackageDescription

/// Every benchmark target: the Benchmark library, the shared fixtures, and the plugin that generates `main`.
/// Targets are named `<Name>Benchmark`: a target named `Decode` would clash with statetap's `Decode` module.
func benchmarkTarget(_ name: String, dependencies: [Target.Dependency]) -> Target {
    .executableTarget(
        name: name,
        dependencies: [.product(name: "Benchmark", package: "benchmark"), "BenchmarkSupport"] + dependencies,
        path: "Benchmarks/\(name)",
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")])
}

let package = Package(
    name: "statetap-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // MallocInterposer only: the default RuntimeInterposer trait would pull in a package that is not needed
        // for the metrics used here (throughput, wall clock, malloc counts).
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
        // Named, so `package: "statetap"` works whatever the checkout folder is called.
        .package(name: "statetap", path: "../"),
        // The interposer Benchmark counts mallocs with (the same package and version Benchmark resolves): read
        // directly around a replay, to split its allocations into a fixed cost and a cost per event.
        .package(url: "https://github.com/ordo-one/malloc-interposer.git", from: "1.6.0"),
        // The HTTPS benchmark's reference: AES-128-GCM straight from swift-crypto (statetap's own dependency).
        .package(url: "https://github.com/apple/swift-crypto", from: "4.0.0"),
    ],
    targets: [
        // Fixtures shared by the benchmarks: the mixed frame set, pinned threads, the capture files for replay,
        // replays with their malloc counts.
        .target(
            name: "BenchmarkSupport",
            dependencies: [
                .product(name: "StatetapDecode", package: "statetap"),
                .product(name: "StatetapPipeline", package: "statetap"),
                .product(name: "StatetapCapture", package: "statetap"),
                .product(name: "PacketCraft", package: "statetap"),
                .product(name: "MallocInterposerSwift", package: "malloc-interposer"),
            ]),
        benchmarkTarget("DecodeBenchmark", dependencies: [.product(name: "StatetapDecode", package: "statetap")]),
        benchmarkTarget("AllocationsBenchmark", dependencies: [
            .product(name: "StatetapDecode", package: "statetap"),
            .product(name: "StatetapFlows", package: "statetap"),
            .product(name: "StatetapPipeline", package: "statetap"),
            .product(name: "PacketCraft", package: "statetap"),
        ]),
        benchmarkTarget("RingBenchmark", dependencies: [.product(name: "StatetapRings", package: "statetap")]),
        benchmarkTarget("ReplayBenchmark", dependencies: [
            .product(name: "StatetapPipeline", package: "statetap"),
            .product(name: "PacketCraft", package: "statetap"),
        ]),
        benchmarkTarget("ExtractBenchmark", dependencies: [
            .product(name: "StatetapExtract", package: "statetap"),
            .product(name: "StatetapTestSupport", package: "statetap"),
        ]),
        benchmarkTarget("HTTPSBenchmark", dependencies: [
            .product(name: "StatetapPipeline", package: "statetap"),
            .product(name: "StatetapExtract", package: "statetap"),
            .product(name: "StatetapCapture", package: "statetap"),
            .product(name: "StatetapDecode", package: "statetap"),
            .product(name: "PacketCraft", package: "statetap"),
            .product(name: "StatetapTestSupport", package: "statetap"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        benchmarkTarget("JournalBenchmark", dependencies: [
            .product(name: "StatetapJournal", package: "statetap"),
            .product(name: "StatetapDecode", package: "statetap"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
