// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "llmtap",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "llmtap", targets: ["llmtap"]),
        .library(name: "LLMTapServer", targets: ["LLMTapServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // OTLP span export, over HTTP only (its gRPC exporter would double the build).
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
    ],
    targets: [
        // Plain value types: records, usage, pricing, money. No I/O.
        .target(
            name: "LLMTapCore",
            resources: [.copy("Resources/pricing.json")]
        ),
        // Pure wire adapters and stream framing: bytes in, facts out.
        .target(
            name: "LLMTapAdapters",
            dependencies: [
                "LLMTapCore",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // The system zlib, for preset dictionaries (CompressNIO does HTTP codings but has none).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // The system zstd, for request and response bodies: as small as zlib's with the same
        // dictionary, in a third to a half of the time (PayloadCodec.BodyCompressor).
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // jemalloc as the process's allocator, in place of glibc's (LLMTapServer/Allocator.swift).
        .systemLibrary(
            name: "CJemalloc", path: "Sources/CJemalloc", pkgConfig: "jemalloc", providers: [.apt(["libjemalloc-dev"])]),
        // SQLite through GRDB: migrations, the Recorder (the only writer), the spool.
        .target(
            name: "LLMTapStore",
            dependencies: [
                "LLMTapCore", "CZlib", "CZstd",
                .product(name: "GRDB", package: "GRDB.swift"),
                // The C API GRDB links, for the writer's hot statements (Statement+Run.swift).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // The recorder's queue, taken from its front a batch at a time.
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // Sockets: the proxy (ingress, upstream, recording tee) and the query API.
        .target(
            name: "LLMTapServer",
            dependencies: [
                "LLMTapCore", "LLMTapAdapters", "LLMTapStore", "CJemalloc",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            resources: [.copy("Resources/openapi.json"), .copy("Resources/dashboard")]
        ),
        .executableTarget(
            name: "llmtap",
            dependencies: [
                "LLMTapServer", "LLMTapStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "llmtap-bench",
            dependencies: [
                "LLMTapServer", "LLMTapStore", "LLMTapCore", "LLMTapAdapters",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/llmtap-bench"
        ),
        .executableTarget(
            name: "llmtap-query-bench",
            dependencies: [
                "LLMTapServer", "LLMTapStore", "LLMTapCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Benchmarks/llmtap-query-bench"
        ),
        // Fuzz targets for every decoder and adapter (Fuzz/run.sh builds them with libFuzzer;
        // `swift test` replays their corpus).
        .target(
            name: "LLMTapFuzzTargets",
            dependencies: ["LLMTapAdapters", "LLMTapCore", .product(name: "NIOCore", package: "swift-nio")],
            path: "Fuzz/Targets"
        ),
        .executableTarget(name: "llmtap-fuzz", dependencies: ["LLMTapFuzzTargets"], path: "Fuzz/Driver"),
        // Recorded OpenAI wire samples and the fake upstream that replays them, shared by the test targets.
        .target(
            name: "LLMTapTestSupport",
            dependencies: [
                "LLMTapCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            path: "Tests/LLMTapTestSupport"
        ),
        .testTarget(name: "LLMTapCoreTests", dependencies: ["LLMTapCore"]),
        .testTarget(
            name: "LLMTapAdaptersTests",
            dependencies: [
                "LLMTapAdapters", "LLMTapTestSupport", "LLMTapFuzzTargets",
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "LLMTapStoreTests",
            dependencies: [
                "LLMTapStore", "LLMTapTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "LLMTapServerTests",
            dependencies: [
                "LLMTapServer", "LLMTapStore", "LLMTapTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ]
        ),
    ]
)
