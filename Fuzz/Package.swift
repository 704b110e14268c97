// swift-tools-version: 6.1
// statetap's libFuzzer harnesses: a package of its own (like Benchmarks/), so the main package carries nothing for
// them. Built by scripts/fuzz.sh (see README.md):
//     swift build -c release --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address
//
// Each executable target is one harness: `@_cdecl` functions `LLVMFuzzerTestOneInput` and `LLVMFuzzerInitialize`
// (seeds, dictionary) in a main.swift without top-level code; `main` is libFuzzer's. With `--sanitize=fuzzer`,
// SwiftPM compiles executables with `-parse-as-library` and links them without renaming `main`. Measured with
// Swift 6.3.1 on Linux: `-Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library` alone fails to link (SwiftPM
// still links with `--defsym main=<Target>_main`, which nothing defines); `--sanitize=fuzzer --sanitize=address`
// builds, but the Swift code gets no coverage instrumentation (the driver keeps only the last `-sanitize=`).
import PackageDescription

let package = Package(
    name: "statetap-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named, so `package: "statetap"` works whatever the checkout folder is called.
        .package(name: "statetap", path: "../"),
        // The QUIC harness protects the Initials it builds (AES-GCM, header protection) as a client would.
        .package(url: "https://github.com/apple/swift-crypto", from: "4.0.0"),
    ],
    targets: [
        // The harnesses' own options (seeds, dictionary), input reading, exact-size copies, ClientHellos.
        .target(name: "FuzzSupport"),
        // Targets are named `<Name>Fuzzer`: a target named `Decode` would clash with statetap's `Decode` module.
        .executableTarget(name: "DecodeFuzzer", dependencies: [
            "FuzzSupport",
            .product(name: "StatetapDecode", package: "statetap"),
            .product(name: "StatetapFlows", package: "statetap"),
            .product(name: "PacketCraft", package: "statetap"),
        ]),
        .executableTarget(name: "HTTPFuzzer", dependencies: [
            "FuzzSupport",
            .product(name: "StatetapExtract", package: "statetap"),
        ]),
        .executableTarget(name: "TLSFuzzer", dependencies: [
            "FuzzSupport",
            .product(name: "StatetapExtract", package: "statetap"),
            .product(name: "StatetapFlows", package: "statetap"),
        ]),
        // HTTPS: the HTTP/2 frame reader and libnghttp2's HPACK, TLS record opening, key-log lines.
        .executableTarget(name: "HTTP2Fuzzer", dependencies: [
            "FuzzSupport",
            .product(name: "StatetapExtract", package: "statetap"),
        ]),
        .executableTarget(name: "APIFuzzer", dependencies: [
            "FuzzSupport",
            .product(name: "StatetapMigrationAPI", package: "statetap"),
            .product(name: "StatetapDecode", package: "statetap"),
        ]),
        .executableTarget(name: "QUICFuzzer", dependencies: [
            "FuzzSupport",
            .product(name: "StatetapExtract", package: "statetap"),
            .product(name: "StatetapTestSupport", package: "statetap"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "CryptoExtras", package: "swift-crypto"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
