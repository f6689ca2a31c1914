// swift-tools-version:6.0
//
// Quarry: a permissioned blockchain node for a car maker's data-rights ledger.
// Dependencies point one way (see docs/adr/0001-package-layout.md):
//
//   quarry (CLI) -> QuarryClient, QuarryLedger, QuarryConsensus, QuarryStore, QuarryCrypto, QuarryCore
//   QuarryClient    -> QuarryLedger, QuarryCrypto, QuarryCore, QuarryRPC (its JSON value type), NIO
//   QuarryLedger    -> QuarryCore, QuarryCrypto   (deterministic state machine, no I/O)
//   QuarryConsensus -> QuarryCore                 (sans-I/O Tendermint core)
//   QuarryStore     -> QuarryCore, CRocksDB
//   QuarryCrypto    -> QuarryCore, COpenSSL, CSecp256k1, CSM2Fast
//   QuarryCore      -> nothing (value types, canonical encoding, protocols)
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "Quarry",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "quarry", targets: ["quarry"]),
        .library(name: "QuarryCore", targets: ["QuarryCore"]),
        .library(name: "QuarryCrypto", targets: ["QuarryCrypto"]),
        .library(name: "QuarryStore", targets: ["QuarryStore"]),
        .library(name: "QuarryLedger", targets: ["QuarryLedger"]),
        .library(name: "QuarryConsensus", targets: ["QuarryConsensus"]),
        .library(name: "QuarryClient", targets: ["QuarryClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        // Node operations: structured logs and Prometheus metrics (ADR 0091, 0092).
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
    ],
    targets: [
        // System libraries, each behind a thin shim header.
        .systemLibrary(name: "CRocksDB", pkgConfig: "rocksdb",
                       providers: [.apt(["librocksdb-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CSecp256k1", pkgConfig: "libsecp256k1",
                       providers: [.apt(["libsecp256k1-dev"])]),

        // Verification-only SM2 arithmetic (ADR 0012). Always optimised, also in debug
        // builds, so that tests running many differential cases stay fast; the flag is
        // allowed because Quarry is the root package.
        .target(name: "CSM2Fast", cSettings: [.unsafeFlags(["-O3"])]),

        .target(name: "QuarryCore", swiftSettings: strict),
        .target(name: "QuarryCrypto",
                dependencies: ["QuarryCore", "COpenSSL", "CSecp256k1", "CSM2Fast"],
                swiftSettings: strict),
        .target(name: "QuarryStore", dependencies: ["QuarryCore", "CRocksDB"],
                swiftSettings: strict),
        .target(name: "QuarryLedger", dependencies: ["QuarryCore", "QuarryCrypto"],
                swiftSettings: strict),
        .target(name: "QuarryConsensus", dependencies: ["QuarryCore"],
                swiftSettings: strict),
        .target(name: "QuarryNetwork",
                dependencies: [
                    "QuarryCore", "QuarryCrypto", "COpenSSL",
                    .product(name: "NIOCore", package: "swift-nio"),
                    .product(name: "NIOPosix", package: "swift-nio"),
                ],
                swiftSettings: strict),
        // Deterministic multi-validator simulator for the consensus core (test support).
        .target(name: "QuarrySimulation", dependencies: ["QuarryConsensus", "QuarryCore"],
                swiftSettings: strict),
        .executableTarget(name: "quarry-sim", dependencies: ["QuarrySimulation"],
                          swiftSettings: strict),

        .executableTarget(
            name: "quarry",
            dependencies: [
                "QuarryCore", "QuarryCrypto", "QuarryStore", "QuarryLedger", "QuarryConsensus",
                "QuarryNode", "QuarryNetwork", "QuarryClient", "QuarryRPC",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "quarry-bench",
            dependencies: ["QuarryCore", "QuarryCrypto", "QuarryStore", "QuarryLedger", "QuarryConsensus",
                           "QuarrySimulation", "QuarryNode", "QuarryClient", "QuarryRPC",
                           "QuarryNetwork", .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: strict),
        // The process QuarryStoreTests' crash test SIGKILLs mid-write; the test target
        // depends on it so `swift build --build-tests` always builds it.
        .executableTarget(name: "quarry-store-crash-child", dependencies: ["QuarryStore", "QuarryCore"],
                          swiftSettings: strict),

        .testTarget(name: "QuarryCoreTests", dependencies: ["QuarryCore"], swiftSettings: strict),
        .testTarget(name: "QuarryCryptoTests", dependencies: ["QuarryCrypto"], swiftSettings: strict),
        .testTarget(name: "QuarryStoreTests", dependencies: ["QuarryStore", "quarry-store-crash-child"],
                    swiftSettings: strict),
        .testTarget(name: "QuarryLedgerTests", dependencies: ["QuarryLedger", "QuarryStore"],
                    swiftSettings: strict),
        .testTarget(name: "QuarryConsensusTests", dependencies: ["QuarryConsensus", "QuarrySimulation"],
                    swiftSettings: strict),
        .testTarget(name: "QuarryNetworkTests",
                    dependencies: [
                        "QuarryNetwork", "QuarryCrypto", "QuarryCore",
                        .product(name: "NIOCore", package: "swift-nio"),
                        .product(name: "NIOPosix", package: "swift-nio"),
                        .product(name: "NIOEmbedded", package: "swift-nio"),
                    ],
                    swiftSettings: strict),
        // The multi-process network test also reads the nodes' block stores after they stop.
        .testTarget(name: "QuarryCLITests",
                    dependencies: ["quarry", "QuarryRPC", "QuarryRPCTestSupport", "QuarryClient", "QuarryNode", "QuarryStore",
                                   "QuarryLedger", "QuarryConsensus", "QuarryCrypto", "QuarryCore"],
                    swiftSettings: strict),

        // JSON-RPC 2.0 server (HTTP + WebSocket) on swift-nio.
        .target(name: "QuarryRPC",
                dependencies: [
                    "QuarryCore",
                    .product(name: "NIOCore", package: "swift-nio"),
                    .product(name: "NIOPosix", package: "swift-nio"),
                    .product(name: "NIOHTTP1", package: "swift-nio"),
                    .product(name: "NIOWebSocket", package: "swift-nio"),
                ],
                swiftSettings: strict),
        // A small blocking HTTP/WebSocket client for tests that talk to real servers.
        .target(name: "QuarryRPCTestSupport", dependencies: ["QuarryRPC", .product(name: "NIOPosix", package: "swift-nio")],
                path: "Tests/Support/QuarryRPCTestSupport", swiftSettings: strict),
        .testTarget(name: "QuarryRPCTests",
                    dependencies: [
                        "QuarryRPC", "QuarryCore", "QuarryRPCTestSupport",
                        .product(name: "NIOCore", package: "swift-nio"),
                        .product(name: "NIOPosix", package: "swift-nio"),
                        .product(name: "NIOHTTP1", package: "swift-nio"),
                        .product(name: "NIOWebSocket", package: "swift-nio"),
                    ],
                    swiftSettings: strict),

        // The node: blocks, block store, mempool, consensus driver, sync, assembly.
        .target(name: "QuarryNode",
                dependencies: ["QuarryCore", "QuarryCrypto", "QuarryStore", "QuarryLedger", "QuarryConsensus",
                               "QuarryNetwork", "QuarryRPC", .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "NIOHTTP1", package: "swift-nio"),
                               .product(name: "Logging", package: "swift-log"),
                               .product(name: "CoreMetrics", package: "swift-metrics"),
                               .product(name: "Prometheus", package: "swift-prometheus")],
                swiftSettings: strict),
        .testTarget(name: "QuarryNodeTests",
                    dependencies: ["QuarryNode", "QuarryStore", "QuarryNetwork", "QuarryRPC", "QuarryRPCTestSupport",
                                   .product(name: "NIOPosix", package: "swift-nio"),
                                   .product(name: "Logging", package: "swift-log"),
                                   .product(name: "CoreMetrics", package: "swift-metrics"),
                                   .product(name: "Prometheus", package: "swift-prometheus")],
                    swiftSettings: strict),

        // JSON-RPC client, typed method wrappers, transaction builders (ADR 0100).
        .target(name: "QuarryClient",
                dependencies: [
                    "QuarryCore", "QuarryCrypto", "QuarryLedger", "QuarryRPC",
                    .product(name: "NIOCore", package: "swift-nio"),
                    .product(name: "NIOPosix", package: "swift-nio"),
                    .product(name: "NIOHTTP1", package: "swift-nio"),
                ],
                swiftSettings: strict),
        .testTarget(name: "QuarryClientTests",
                    dependencies: ["QuarryClient", "QuarryLedger", "QuarryCrypto", "QuarryCore", "QuarryRPC",
                                   .product(name: "NIOCore", package: "swift-nio"),
                                   .product(name: "NIOPosix", package: "swift-nio")],
                    swiftSettings: strict),
    ]
)
