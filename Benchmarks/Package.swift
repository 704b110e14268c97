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
    ],
    targets: [
        // Fixtures shared by the benchmarks: the mixed frame set, pinned threads, the capture file for replay.
        .target(
            name: "BenchmarkSupport",
            dependencies: [
                .product(name: "StatetapDecode", package: "statetap"),
                .product(name: "PacketCraft", package: "statetap"),
                .product(name: "StatetapShims", package: "statetap"),
            ]),
        benchmarkTarget("DecodeBenchmark", dependencies: [.product(name: "StatetapDecode", package: "statetap")]),
        benchmarkTarget("AllocationsBenchmark", dependencies: [
            .product(name: "StatetapDecode", package: "statetap"),
            .product(name: "StatetapFlows", package: "statetap"),
        ]),
        benchmarkTarget("RingBenchmark", dependencies: [.product(name: "StatetapRings", package: "statetap")]),
        benchmarkTarget("ReplayBenchmark", dependencies: [
            .product(name: "StatetapPipeline", package: "statetap"),
            .product(name: "PacketCraft", package: "statetap"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
