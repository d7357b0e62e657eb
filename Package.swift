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
    dependencies: [
        // Keep swift-protobuf and grpc-swift-protobuf equal to contrib/gen-proto's plugin versions.
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    ],
    targets: [
        // MARK: C libraries and shims
        // Headers only: the libraries are loaded on first use by CDynamicLibraries.
        .systemLibrary(name: "CSystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CYAML", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CArchive", providers: [.apt(["libarchive-dev"])]),
        .target(name: "CDynamicLibraries"),
        .target(name: "CLinux", linkerSettings: [.linkedLibrary("z")]),

        // MARK: Shared library
        .target(name: "UnitFile", swiftSettings: strictSettings),
        .target(name: "Net", dependencies: ["CLinux"], swiftSettings: strictSettings),
        .target(
            name: "Journal", dependencies: ["CSystemd", "CDynamicLibraries"], swiftSettings: strictSettings),
        .target(name: "YAML", dependencies: ["CYAML", "CDynamicLibraries"], swiftSettings: strictSettings),
        .target(
            name: "Platform", dependencies: ["CSystemd", "CYAML", "CArchive", "CDynamicLibraries", "CLinux"],
            swiftSettings: strictSettings),
        .target(name: "CLI", swiftSettings: strictSettings),
        // HTTP/1.1 serving over SwiftNIO: etcd's HTTP endpoints, discovery, fleetd's API.
        .target(
            name: "HTTPServer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings),
        .target(
            name: "Runtime",
            dependencies: [
                "CArchive", "CDynamicLibraries", "CLinux", "Platform", "Net", "EtcdClient",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings),
        .target(
            name: "CloudInit",
            dependencies: ["YAML", "UnitFile", "Platform", "CLinux", "CSystemd", "CDynamicLibraries", "EtcdClient"],
            swiftSettings: strictSettings),
        .target(name: "Checksums", swiftSettings: strictSettings),
        .target(name: "Raft", swiftSettings: strictSettings),
        .target(name: "RaftCoding", dependencies: ["Raft"], swiftSettings: strictSettings),
        .target(name: "MVCC", dependencies: ["RaftCoding"], swiftSettings: strictSettings),
        .target(name: "Storage", dependencies: ["Raft", "RaftCoding", "Checksums"], swiftSettings: strictSettings),
        .target(
            name: "RaftTransport",
            dependencies: [
                "Raft", "RaftCoding", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings),
        .target(name: "BoltDB", dependencies: ["Checksums"], swiftSettings: strictSettings),
        // etcd's v2 keys store: a pure value the server replicates through Raft.
        .target(name: "EtcdV2Store", dependencies: ["GoFormat"], swiftSettings: strictSettings),
        // fleet's unit model and scheduler: pure, driven by the fleet daemon and tests.
        .target(
            name: "Fleet", dependencies: ["UnitFile", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings),
        // The embedded service supervisor (fleet's agent where systemd is not PID 1).
        .target(name: "Supervisor", dependencies: ["UnitFile", "CLinux", "CSystemd", "CDynamicLibraries"], swiftSettings: strictSettings),
        // fleet's state in etcd v3 (Documentation/fleet.md).
        .target(
            name: "FleetRegistry",
            dependencies: ["Fleet", "EtcdClient", "EtcdAPI", "UnitFile", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: strictSettings),
        // flannel's network configuration, subnet leases and subnet.env: pure.
        .target(name: "Flannel", dependencies: ["Net", "GoFormat"], swiftSettings: strictSettings),
        // flanneld: leases in etcd (v3 or v2), backends over rtnetlink and TUN, masquerade.
        .target(
            name: "FlannelDaemon",
            dependencies: [
                "Flannel", "Net", "CLI", "EtcdClient", "EtcdAPI", "HTTPServer", "Platform",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings),
        // fleetd: agent, engine election and watch loop, unit managers, HTTP API v1.
        .target(
            name: "FleetDaemon",
            dependencies: [
                "Fleet", "FleetRegistry", "Supervisor", "HTTPServer", "EtcdClient", "EtcdAPI", "UnitFile", "Platform",
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings),
        // coreos node: a machine's services planned from cloud-config and supervised.
        .target(name: "Node", swiftSettings: strictSettings),
        // coreos cluster: a local multi-node cluster's layout, node cloud-configs and status table.
        .target(name: "Cluster", swiftSettings: strictSettings),
        // fleetctl's two drivers: fleetd's HTTP API and the registry in etcd.
        .target(name: "FleetClient", dependencies: ["FleetRegistry", "EtcdClient"], swiftSettings: strictSettings),
        // etcd's users, roles, permissions and bcrypt: a pure value the server replicates.
        .target(name: "EtcdAuth", swiftSettings: strictSettings),
        // Go's text formats that clients compare byte for byte (JSON string escaping).
        .target(name: "GoFormat", swiftSettings: strictSettings),

        // MARK: etcd v3 API (generated by contrib/gen-proto; do not edit) and the client
        .target(
            name: "EtcdAPI",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ]
        ),
        .target(
            name: "EtcdClient",
            dependencies: [
                "EtcdAPI", "GoFormat",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings
        ),

        .target(
            name: "EtcdServer",
            dependencies: [
                "CLinux", "Checksums", "EtcdAPI", "EtcdAuth", "EtcdClient", "EtcdV2Store", "GoFormat", "HTTPServer", "MVCC", "Net", "Raft", "RaftCoding", "RaftTransport", "Storage", "YAML",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),

        .target(
            name: "EtcdBenchmark",
            dependencies: [
                "EtcdClient", "EtcdAPI",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            swiftSettings: strictSettings
        ),

        // MARK: Applets and the multi-call executable
        .target(
            name: "Applets",
            dependencies: [
                "CLI", "Platform", "UnitFile", "CloudInit", "Runtime", "EtcdClient", "GoFormat", "EtcdAPI", "EtcdBenchmark", "BoltDB", "EtcdServer", "Journal", "Fleet", "FleetRegistry", "FleetDaemon", "FleetClient", "Flannel", "FlannelDaemon", "Node", "Cluster", "YAML", "Net",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(name: "coreos", dependencies: ["Applets"], swiftSettings: strictSettings),
        // Every parser of outside input as a fuzz target (coreos-fuzz; Documentation/reliability.md); not shipped.
        .target(
            name: "FuzzTargets",
            dependencies: ["CloudInit", "EtcdServer", "Journal", "Raft", "Runtime", "Storage", "UnitFile", "YAML"],
            swiftSettings: strictSettings),
        .executableTarget(name: "coreos-fuzz", dependencies: ["FuzzTargets"], swiftSettings: strictSettings),
        // Benchmarks of Raft and Storage (contrib/bench/raft.sh); not shipped.
        .executableTarget(name: "coreos-bench", dependencies: ["Raft", "Storage"], swiftSettings: strictSettings),
        // The key-value node of the real-process Raft test (Tests/Interop/raft-kill-leader.sh); not shipped.
        .executableTarget(
            name: "raft-kv",
            dependencies: [
                "Raft", "RaftTransport", "Storage", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings),

        // MARK: Tests
        .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: strictSettings),
        .testTarget(name: "UnitFileTests", dependencies: ["UnitFile", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "NetTests", dependencies: ["Net", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "CLITests", dependencies: ["CLI"], swiftSettings: strictSettings),
        .testTarget(name: "RaftTests", dependencies: ["Raft", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "MVCCTests", dependencies: ["MVCC", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "JournalTests", dependencies: ["Journal"], swiftSettings: strictSettings),
        .testTarget(name: "YAMLTests", dependencies: ["YAML"], swiftSettings: strictSettings),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "CloudInitTests", dependencies: ["CloudInit", "YAML", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "RaftTransportTests", dependencies: ["RaftTransport", "Raft", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "Raft", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "ChecksumsTests", dependencies: ["Checksums"], swiftSettings: strictSettings),
        .testTarget(name: "BoltDBTests", dependencies: ["BoltDB", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "EtcdBenchmarkTests", dependencies: ["EtcdBenchmark"], swiftSettings: strictSettings),
        .testTarget(name: "EtcdServerTests", dependencies: ["EtcdServer", "EtcdAPI", "MVCC", "RaftCoding"], swiftSettings: strictSettings),
        .testTarget(
            name: "EtcdClientTests",
            dependencies: [
                "EtcdClient", "EtcdAPI", "TestSupport",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "EtcdV2StoreTests", dependencies: ["EtcdV2Store"], swiftSettings: strictSettings),
        .testTarget(name: "EtcdAuthTests", dependencies: ["EtcdAuth"], swiftSettings: strictSettings),
        .testTarget(name: "FleetTests", dependencies: ["Fleet", "UnitFile"], swiftSettings: strictSettings),
        .testTarget(name: "SupervisorTests", dependencies: ["Supervisor", "UnitFile"], swiftSettings: strictSettings),
        .testTarget(
            name: "FleetRegistryTests", dependencies: ["FleetRegistry", "Fleet", "EtcdClient", "EtcdAPI", "TestSupport", "UnitFile"],
            swiftSettings: strictSettings),
        .testTarget(name: "GoFormatTests", dependencies: ["GoFormat"], swiftSettings: strictSettings),
        .testTarget(name: "FleetDaemonTests", dependencies: ["FleetDaemon"], swiftSettings: strictSettings),
        .testTarget(name: "FlannelTests", dependencies: ["Flannel", "Net"], swiftSettings: strictSettings),
        .testTarget(name: "NodeTests", dependencies: ["Node"], swiftSettings: strictSettings),
        .testTarget(name: "ClusterTests", dependencies: ["Cluster", "CloudInit", "YAML", "Node"], swiftSettings: strictSettings),
        .testTarget(name: "FlannelDaemonTests", dependencies: ["FlannelDaemon", "Flannel", "Net"], swiftSettings: strictSettings),
        .testTarget(name: "PlatformTests", dependencies: ["Platform"], swiftSettings: strictSettings),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["coreos", "UnitFile", "TestSupport"],
            swiftSettings: strictSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
