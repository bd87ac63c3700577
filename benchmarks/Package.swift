// swift-tools-version: 6.1
//
// FDRemap's benchmarks: a package of their own, so that the library does
// not depend on package-benchmark.  Run them, and write RESULTS.md's
// table and scaling.svg, with ./run.sh (or only run them with
// `swift package --package-path benchmarks benchmark`).
//
//   CRemapBench  the C side: table builders, descriptor lists, and the
//                baselines (memcpy, a plain gather loop, FreeBSD 11's
//                remap loop), written plainly over the core's structures
//   Remap        remapping tables of 1K to 16M descriptors, ours against
//                the baselines
//   CLaunchBench descriptors to pass, and posix_spawn with file actions
//   Launch       starting a program with remapped descriptors
import PackageDescription

let package = Package(
    name: "FDRemapBenchmarks",
    dependencies: [
        // `name:` matters: CI clones into a folder of another name.
        .package(name: "FDRemap", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0",
                 traits: ["MallocInterposer"]),
    ],
    targets: [
        .target(
            name: "CRemapBench",
            dependencies: [.product(name: "CFDRemapKernel", package: "FDRemap")]
        ),
        .target(name: "CLaunchBench"),
        .executableTarget(
            name: "Remap",
            dependencies: [
                "CRemapBench",
                .product(name: "FDRemap", package: "FDRemap"),
                .product(name: "CFDRemapKernel", package: "FDRemap"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/Remap",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Launch",
            dependencies: [
                "CLaunchBench",
                "CRemapBench",
                .product(name: "CArgdata", package: "FDRemap"),
                .product(name: "CFDRemapHost", package: "FDRemap"),
                .product(name: "FDRemap", package: "FDRemap"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/Launch",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
