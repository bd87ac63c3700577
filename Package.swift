// swift-tools-version: 6.1
//
// FDRemap: start a program with exactly the descriptors it should have.
//
// The layers, each depending only on the ones before it:
//   CFDRemapKernel  the kernel model in C (public headers: include/)
//   CArgdata        argdata in C (include/argdata.h), needing nothing of
//                   the kernel model (it uses the kernel's counted
//                   allocator only when that is linked in too)
//   CFDRemapHost    the host launcher in C: real programs with exact
//                   descriptor tables (include/fdremap/program.h)
//   FDRemap         the Swift face over them
import PackageDescription

let package = Package(
    name: "FDRemap",
    products: [
        .library(name: "FDRemap", targets: ["FDRemap"]),
        .library(name: "CFDRemapKernel", targets: ["CFDRemapKernel"]),
        .library(name: "CArgdata", targets: ["CArgdata"]),
        .library(name: "CFDRemapHost", targets: ["CFDRemapHost"]),
        .executable(name: "fdrun", targets: ["fdrun"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.8.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
        // Documentation only: `swift package generate-documentation`.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // The kernel model.  Its path is the package root so that its
        // public headers can be the top-level include/.
        .target(
            name: "CFDRemapKernel",
            path: ".",
            sources: ["Sources/CFDRemapKernel"],
            publicHeadersPath: "include"
        ),
        // Argdata, source-compatible with CloudABI's argdata.h.  Its
        // module map points back at the top-level include/argdata.h.
        .target(
            name: "CArgdata",
            cSettings: [.headerSearchPath("../../include")]
        ),
        // The host launcher.  Its header is include/fdremap/program.h; the
        // module map in Sources/CFDRemapHost/include points back to it.
        .target(
            name: "CFDRemapHost",
            dependencies: ["CFDRemapKernel", "CArgdata"],
            cSettings: [.headerSearchPath("../../include")]
        ),
        .target(
            name: "FDRemap",
            dependencies: [
                "CFDRemapKernel",
                "CArgdata",
                "CFDRemapHost",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // A program the launcher's tests start: it reports its descriptor
        // table, arguments, environment and signal state back.
        .executableTarget(
            name: "fdremap-probe",
            dependencies: ["CFDRemapHost", "CArgdata"],
            path: "Tests/Probes/fdremap-probe",
            cSettings: [.headerSearchPath("../../../include")]
        ),
        // The same in Swift, for the child's side of the Swift API.
        .executableTarget(
            name: "fdremap-swift-probe",
            dependencies: [
                "FDRemap",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Tests/Probes/fdremap-swift-probe"
        ),
        // fdrun's configuration: YAML to an argdata plan (pure, what the
        // fuzzer drives), and opening the plan's descriptors.
        .target(
            name: "FDRunConfig",
            dependencies: [
                "FDRemap",
                .product(name: "Yams", package: "Yams"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // fdrun, the command-line launcher (cloudabi-run compatible).
        .executableTarget(
            name: "fdrun",
            dependencies: [
                "FDRemap",
                "FDRunConfig",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The program fdrun's tests start: it reports its descriptors,
        // environment and argdata, and exits or dies as told.
        .executableTarget(
            name: "fdrun-probe",
            dependencies: ["CFDRemapHost", "CArgdata"],
            path: "Tests/Probes/fdrun-probe",
            cSettings: [.headerSearchPath("../../../include")]
        ),
        // Examples (see README): a C program that shows what it was
        // handed, and a Swift web server on the socket it was handed.
        .executableTarget(
            name: "show-descriptors",
            dependencies: ["CFDRemapHost", "CArgdata"],
            path: "Examples/show-descriptors",
            exclude: ["show.yaml", "greeting.txt"],
            cSettings: [.headerSearchPath("../../include")]
        ),
        .executableTarget(
            name: "hello-server",
            dependencies: [
                "FDRemap",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Examples/hello-server",
            exclude: ["hello.yaml"]
        ),
        // The libFuzzer targets (Tests/Fuzz/run.sh): the exec copy-in, the
        // argdata decoder, fdrun's configuration. Built plainly, each
        // replays the inputs named on its command line (FuzzReplay).
        .target(name: "FuzzReplay", path: "Tests/Fuzz/Targets/FuzzReplay"),
        .executableTarget(
            name: "fuzz-kernel",
            dependencies: ["CFDRemapKernel", "FuzzReplay"],
            path: "Tests/Fuzz/Targets/FuzzKernel"
        ),
        .executableTarget(
            name: "fuzz-argdata",
            dependencies: ["CArgdata", "CFDRemapKernel", "FuzzReplay"],
            path: "Tests/Fuzz/Targets/FuzzArgdata",
            cSettings: [.headerSearchPath("../../../../include")]
        ),
        .target(
            name: "FuzzFDRunEntry",
            dependencies: ["FDRunConfig", "FDRemap"],
            path: "Tests/Fuzz/Targets/FuzzFDRunEntry"
        ),
        .executableTarget(
            name: "fuzz-fdrun",
            dependencies: ["FuzzFDRunEntry", "FuzzReplay"],
            path: "Tests/Fuzz/Targets/FuzzFDRun"
        ),
        // Swift's argdata decoding against the C library's reading.
        .target(
            name: "FuzzArgdataSwiftEntry",
            dependencies: ["FDRemap", "FDRemapTestSupport",
                           .product(name: "SystemPackage", package: "swift-system")],
            path: "Tests/Fuzz/Targets/FuzzArgdataSwiftEntry"
        ),
        .executableTarget(
            name: "fuzz-argdata-swift",
            dependencies: ["FuzzArgdataSwiftEntry", "FuzzReplay"],
            path: "Tests/Fuzz/Targets/FuzzArgdataSwift"
        ),
        // What the test targets (and fuzz-argdata-swift) share: a seeded
        // random generator, and the C library's reading of argdata.
        .target(
            name: "FDRemapTestSupport",
            dependencies: ["FDRemap", "CArgdata",
                           .product(name: "SystemPackage", package: "swift-system")],
            path: "Tests/FDRemapTestSupport"
        ),
        // C the tests need and Swift cannot call (clone3 with set_tid).
        .target(
            name: "CFDRemapTestHooks",
            dependencies: ["CFDRemapKernel"],
            path: "Tests/CFDRemapTestHooks"
        ),
        .testTarget(
            name: "FDRemapKernelTests",
            dependencies: [
                "FDRemapTestSupport",
                "CFDRemapTestHooks",
                "FDRemap",
                "CFDRemapKernel",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .testTarget(
            name: "FDRemapArgdataTests",
            dependencies: [
                "FDRemapTestSupport",
                "CFDRemapTestHooks",
                "FDRemap",
                "CArgdata",
                "CFDRemapKernel",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .testTarget(
            name: "FDRemapLaunchTests",
            dependencies: [
                "FDRemapTestSupport",
                "FDRemap",
                "CFDRemapHost",
                "CArgdata",
                "CFDRemapTestHooks",
                "fdremap-probe",
                "fdremap-swift-probe",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // fdrun: the configuration in process, the tool end to end.
        .testTarget(
            name: "FDRunTests",
            dependencies: [
                "FDRemapTestSupport",
                "FDRemap",
                "FDRunConfig",
                "CFDRemapHost",
                "fdrun",
                "fdrun-probe",
                "hello-server",
                "show-descriptors",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
    ]
)
