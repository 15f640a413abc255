import AsyncHTTPClient
import Foundation
import LLMTapServer
import LLMTapStore
import LLMTapTestSupport
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// A running llmtap (real listeners on ports 0, real SQLite file in a fresh
/// directory) in front of a `FakeUpstream`.
struct Tap: Sendable {
    let proxyPort: Int
    let apiPort: Int
    let upstreamPort: Int
    let app: LLMTapApplication
    let upstream: FakeUpstream
    let directory: URL
    let group: ServiceGroup

    /// A client that, like the openai SDK's, leaves content codings to the caller (no automatic decompression).
    var client: HTTPClient { Tap.sharedClient }

    /// Up to 64 connections to one proxy: the tests that send calls at once (40 under sync
    /// durability) get a connection each instead of queueing behind the default 8, where a call
    /// that waited over the 10 s connect timeout on two busy cores failed with
    /// `getConnectionFromPoolTimeout` (seen once in a fresh-clone CI run).
    static let sharedClient = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: .init(
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64),
            decompression: .disabled))

    func url(_ path: String) -> String { "http://127.0.0.1:\(proxyPort)\(path)" }

    /// POSTs `body` to the proxy.
    func post(_ path: String = "/v1/chat/completions", body: String, headers: [(String, String)] = []) async throws
        -> HTTPClientResponse
    {
        var request = HTTPClientRequest(url: url(path))
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "authorization", value: "Bearer \(Tap.secretKey)")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: body))
        return try await client.execute(request, timeout: .seconds(30))
    }

    /// POSTs `body` on a raw connection and reads until the proxy closes it: the status, the
    /// body (de-chunked) and whether it ended cleanly. For cut streams: HTTPClient drops body
    /// parts it has received but not yet handed over when the connection then fails (seen
    /// under load: the client lost an event llmtap had sent), and this sees every byte on the wire.
    func rawPost(_ path: String = "/v1/chat/completions", body: String, seconds: Double = 20) async throws
        -> (status: Int, bytes: String, clean: Bool)
    {
        let connection = try await RawConnection(port: proxyPort)
        try await connection.send(
            "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Authorization: Bearer \(Tap.secretKey)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body)
        let (raw, _) = await connection.readUntilClosed(seconds: seconds)
        return Self.parseResponse(Array(raw.utf8))
    }

    /// An HTTP/1.1 response as received: a chunked body ends cleanly with its last chunk, a
    /// sized one with its last byte.
    static func parseResponse(_ raw: [UInt8]) -> (status: Int, bytes: String, clean: Bool) {
        let separator = Array("\r\n\r\n".utf8)
        guard let end = (0..<max(0, raw.count - 3)).first(where: { raw[$0..<($0 + 4)].elementsEqual(separator) }) else {
            return (0, "", false)
        }
        let head = String(decoding: raw[..<end], as: UTF8.self).lowercased()
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        var rest = Array(raw[(end + 4)...])
        if head.contains("transfer-encoding: chunked") {
            var body: [UInt8] = []
            while let lineEnd = (0..<max(0, rest.count - 1)).first(where: { rest[$0] == 13 && rest[$0 + 1] == 10 }),
                let size = Int(String(decoding: rest[..<lineEnd], as: UTF8.self), radix: 16)
            {
                if size == 0 { return (status, String(decoding: body, as: UTF8.self), true) }
                let start = lineEnd + 2
                guard rest.count >= start + size else {
                    body += rest[start...]  // the chunk the cut interrupted
                    break
                }
                body += rest[start..<(start + size)]
                rest = Array(rest[min(rest.count, start + size + 2)...])
            }
            return (status, String(decoding: body, as: UTF8.self), false)
        }
        if let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
            let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        {
            return (status, String(decoding: rest.prefix(length), as: UTF8.self), rest.count >= length)
        }
        return (status, String(decoding: rest, as: UTF8.self), true)
    }

    /// Every byte of a response body, and whether it ended cleanly.
    static func read(_ response: HTTPClientResponse) async -> (bytes: String, clean: Bool) {
        var bytes = ByteBuffer()
        do {
            for try await var chunk in response.body { bytes.writeBuffer(&chunk) }
            return (String(buffer: bytes), true)
        } catch {
            return (String(buffer: bytes), false)
        }
    }

    static let secretKey = "sk-test-SECRET-4f9a1c77e2"

    /// Runs llmtap around `body`, shuts it down gracefully (the recorder drains),
    /// and returns the database for inspection.
    static func run(
        upstream: FakeUpstream = FakeUpstream(),
        upstreamURL: String? = nil,
        logs: LogCapture? = nil,
        configure: @Sendable (inout LLMTapConfiguration) -> Void = { _ in },
        _ body: @Sendable (Tap) async throws -> Void
    ) async throws -> Store {
        let directory = try TestFiles.directory()
        try await upstream.run { upstreamPort in
            var configuration = LLMTapConfiguration()
            configuration.port = 0
            configuration.apiPort = 0
            configuration.databasePath = directory.appendingPathComponent("llmtap.sqlite").path
            configuration.upstream = upstreamURL ?? "http://127.0.0.1:\(upstreamPort)"
            configuration.providers["local"] = "http://127.0.0.1:\(upstreamPort)"
            configuration.providers["anthropic"] = "http://localhost:\(upstreamPort)"
            configuration.providers["ollama"] = "http://localhost:\(upstreamPort)"
            configuration.recorder.flushInterval = .milliseconds(1)
            configure(&configuration)
            var logger = logs.map { capture in Logger(label: "llmtap-test") { _ in capture } } ?? Logger(label: "llmtap-test")
            logger.logLevel = logs == nil ? .warning : .trace
            let (ports, portsContinuation) = AsyncStream<(Listener, Int)>.makeStream()
            let app = try buildApplication(configuration, logger: logger) { listener, port in
                portsContinuation.yield((listener, port))
            }
            let group = ServiceGroup(configuration: .init(services: app.services, logger: logger))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                var proxyPort = 0
                var apiPort = 0
                for await (listener, port) in ports {
                    if listener == .proxy { proxyPort = port } else { apiPort = port }
                    if proxyPort != 0 && apiPort != 0 { break }
                }
                let tap = Tap(
                    proxyPort: proxyPort, apiPort: apiPort, upstreamPort: upstreamPort, app: app, upstream: upstream, directory: directory,
                    group: group)
                do {
                    try await body(tap)
                } catch {
                    await group.triggerGracefulShutdown()
                    throw error
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
        return try Store(path: directory.appendingPathComponent("llmtap.sqlite").path)
    }
}

/// Every log line llmtap writes during a run (at `trace`, the most it ever says).
final class LogCapture: LogHandler, @unchecked Sendable {  // lines are guarded by the lock
    private let lock = NSLock()
    private var captured: [String] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    var lines: [String] { lock.withLock { captured } }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { _, new in new }
        lock.withLock { captured.append("\(event.level) \(event.message) \(all)") }
    }
}
