// swift-tools-version: 6.1
//
// FDRemap: start a program with exactly the descriptors it should have.
//
// The layers, each depending only on the ones before it:
//   CFDRemapKernel  the kernel model in C (public headers: include/)
//   FDRemap         the Swift face over it
import PackageDescription

let package = Package(
    name: "FDRemap",
    products: [
        .library(name: "FDRemap", targets: ["FDRemap"]),
        .library(name: "CFDRemapKernel", targets: ["CFDRemapKernel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.8.0"),
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
        .target(
            name: "FDRemap",
            dependencies: [
                "CFDRemapKernel",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // libFuzzer target for the exec copy-in (see .ci/run).
        .executableTarget(
            name: "fuzz-kernel",
            dependencies: ["CFDRemapKernel"],
            path: "Sources/FuzzKernel"
        ),
        .testTarget(
            name: "FDRemapKernelTests",
            dependencies: [
                "FDRemap",
                "CFDRemapKernel",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
    ]
)
