// swift-tools-version:6.1
// The whole CoreOS cluster stack as one executable. Module layout: Documentation/architecture.md.
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "coreos",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "coreos", targets: ["coreos"])
    ],
    targets: [
        // MARK: C libraries and shims
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .target(name: "CLinux"),

        // MARK: Shared library
        .target(name: "UnitFile", swiftSettings: strictSettings),
        .target(name: "Net", swiftSettings: strictSettings),
        .target(
            name: "Platform", dependencies: ["CSystemd", "CYAML", "CArchive", "CLinux"], swiftSettings: strictSettings),
        .target(name: "CLI", swiftSettings: strictSettings),

        // MARK: Applets and the multi-call executable
        .target(name: "Applets", dependencies: ["CLI", "Platform", "UnitFile"], swiftSettings: strictSettings),
        .executableTarget(name: "coreos", dependencies: ["Applets"], swiftSettings: strictSettings),

        // MARK: Tests
        .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: strictSettings),
        .testTarget(name: "UnitFileTests", dependencies: ["UnitFile", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "NetTests", dependencies: ["Net", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "CLITests", dependencies: ["CLI"], swiftSettings: strictSettings),
        .testTarget(name: "PlatformTests", dependencies: ["Platform"], swiftSettings: strictSettings),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["coreos", "UnitFile", "TestSupport"],
            swiftSettings: strictSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
