import Foundation
import LLMTapCore
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// An upstream that misbehaves at the byte level, which no HTTP server library will do:
/// HTTP/1.0 bodies ended by closing, resets, headers followed by silence. It reads one
/// request per connection and plays the script that the request's `model` names.
public final class RawUpstream: Sendable {
    public enum Step: Sendable {
        case send(String)
        case sendBytes([UInt8])
        case pause(Duration)
        /// Close the connection (ends a close-delimited body).
        case close
        /// Abort the connection with a TCP reset.
        case reset
        /// Wait for the client to close the connection, at most this long.
        case awaitClose(Duration)
    }

    private let scripts: [String: [Step]]
    private let connections = Atomic<Int>(0)
    /// Connections accepted.
    public var opened: Int { connections.load(ordering: .relaxed) }
    /// Connections that ended (closed by either side).
    public var finished: Int { ended.load(ordering: .relaxed) }
    private let ended = Atomic<Int>(0)

    /// Speaks TLS with this context (`SelfSigned`), when given.
    private let tls: NIOSSLContext?

    public init(scripts: [String: [Step]], tls: NIOSSLContext? = nil) {
        self.scripts = scripts
        self.tls = tls
    }

    /// Runs the server on an ephemeral port for the duration of `body`.
    public func run<T: Sendable>(_ body: @Sendable (Int) async throws -> T) async throws -> T {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { [tls] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let port = server.channel.localAddress!.port!
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await server.executeThenClose { inbound in
                    try await withThrowingDiscardingTaskGroup { connections in
                        for try await connection in inbound {
                            connections.addTask { await self.serve(connection) }
                        }
                    }
                }
                return nil
            }
            let result = try await body(port)
            group.cancelAll()
            try? await server.channel.close()
            return result
        }
    }

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        connections.add(1, ordering: .relaxed)
        defer { ended.add(1, ordering: .relaxed) }
        do {
            try await connection.executeThenClose { inbound, _ in
                var request = ByteBuffer()
                var iterator = inbound.makeAsyncIterator()
                var model: String?
                while model == nil, var chunk = try await iterator.next() {
                    request.writeBuffer(&chunk)
                    model = Self.model(in: request)
                }
                for step in scripts[model ?? ""] ?? [.send("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"), .close] {
                    switch step {
                    // Written through the channel, whose future completes once the bytes are in the
                    // socket: closing after an unfinished write would drop what is left of it.
                    case .send(let text): try await connection.channel.writeAndFlush(ByteBuffer(string: text))
                    case .sendBytes(let bytes): try await connection.channel.writeAndFlush(ByteBuffer(bytes: bytes))
                    case .pause(let duration): try await Task.sleep(for: duration)
                    case .close: return
                    case .awaitClose(let limit):
                        let channel = connection.channel
                        await withTaskGroup(of: Void.self) { group in
                            group.addTask { try? await channel.closeFuture.get() }
                            group.addTask { try? await Task.sleep(for: limit) }
                            await group.next()
                            group.cancelAll()
                        }
                    case .reset:
                        // SO_LINGER 0: closing sends RST instead of FIN.
                        if let socket = connection.channel as? SocketOptionProvider {
                            try await socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
                        }
                        return
                    }
                }
            }
        } catch {}
    }

    /// The `model` of a complete request (head and `Content-Length` body), or nil while incomplete.
    static func model(in request: ByteBuffer) -> String? {
        let text = String(buffer: request)
        guard let headEnd = text.range(of: "\r\n\r\n") else { return nil }
        let head = text[..<headEnd.lowerBound].lowercased()
        let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces)) } ?? 0
        let body = Array(text[headEnd.upperBound...].utf8)
        guard body.count >= length else { return nil }
        return JSONValue.parse(body.prefix(length))?["model"]?.stringValue ?? ""
    }
}
