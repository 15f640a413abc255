import CompressNIO
import Foundation
import HTTPTypes
import Hummingbird
import LLMTapCore
import NIOCore
import Synchronization

/// An in-process OpenAI stand-in on an ephemeral port that replays `WireSamples`
/// over real HTTP. The request's `model` picks the behaviour:
/// - `text` (and anything unknown): the text stream, or `completion` when not streaming;
/// - `tools`, `usage-every-chunk`, `error-mid-stream`: those streams;
/// - `slow`: two chunks (role, "Hello"), then waits for `openGate()` before the rest;
/// - `cut`: two chunks, then the connection drops;
/// - `http-500`: a server error; `gzip`: the completion gzip-encoded; `html`: a web page, not the API;
/// - `stall`: headers and one chunk, then silence.
/// Streams honour `stream_options.include_usage` the way OpenAI does.
public final class FakeUpstream: Sendable {
    public struct Received: Sendable {
        public var body: [UInt8]
        public var headers: HTTPFields
        public var path: String
        /// The Host header as received (HTTPTypes keeps it as the `:authority` pseudo-header).
        public var authority: String?

        /// A request header by name, case-insensitively.
        public func header(_ name: String) -> String? {
            HTTPField.Name(name).flatMap { headers[$0] }
        }
    }

    private let received = Mutex<[Received]>([])
    private let aborted = Mutex(0)
    private let closed = Mutex(0)
    private let opened = Mutex(0)
    private let gate = AsyncStream<Void>.makeStream()

    public init() {}

    public var requests: [Received] { received.withLock { $0 } }

    /// Streams whose client (llmtap) went away before the last chunk was written.
    public var abortedStreams: Int { aborted.withLock { $0 } }

    /// Connections the client (llmtap) closed or half-closed.
    public var closedConnections: Int { closed.withLock { $0 } }

    /// Connections the client (llmtap) opened.
    public var openedConnections: Int { opened.withLock { $0 } }

    /// Lets a `slow` stream send the rest of its chunks.
    public func openGate() { gate.continuation.yield() }

    /// Runs the upstream for the duration of `body`, passing its port.
    public func run<T: Sendable>(_ body: @Sendable (Int) async throws -> T) async throws -> T {
        let (portStream, portContinuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router(),
            server: .http1(configuration: .init(additionalChannelHandlers: [
                ConnectionWatcher(
                    onOpen: { self.opened.withLock { $0 += 1 } }, onClose: { self.closed.withLock { $0 += 1 } })
            ])),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in portContinuation.yield(channel.localAddress?.port ?? 0) }
        )
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await app.run()
                return nil
            }
            var ports = portStream.makeAsyncIterator()
            let port = await ports.next()!
            let result = try await body(port)
            group.cancelAll()
            return result
        }
    }

    private func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/**") { request, context -> Response in
            let body = try await request.body.collect(upTo: 64 << 20)
            self.received.withLock {
                $0.append(
                    Received(
                        body: Array(body.readableBytesView), headers: request.headers, path: request.uri.path,
                        authority: request.head.authority))
            }
            let json = JSONValue.parse(body.readableBytesView)
            let path = request.uri.path
            if path.hasSuffix("/v1/messages") { return self.anthropic(json) }
            if path.hasSuffix("/api/chat") || path.hasSuffix("/api/generate") {
                return self.ollama(json, generate: path.hasSuffix("/api/generate"))
            }
            if let other = self.otherOpenAI(path: path, json) { return other }
            let model = json?["model"]?.stringValue ?? "text"
            if model == "echo-gzip" { return Self.echo(json) }
            let stream = json?["stream"]?.boolValue ?? false
            let includeUsage = json?["stream_options"]?["include_usage"]?.boolValue ?? false
            return self.respond(model: model, stream: stream, includeUsage: includeUsage)
        }
        router.get("/**") { request, _ -> Response in
            guard request.uri.path.hasSuffix("/v1/models") else { return Self.json(#"{"error":"no"}"#, status: .notFound) }
            return Self.json(WireSamples.modelList, status: .ok)
        }
        return router
    }

    /// Responses, embeddings and legacy completions, streamed when asked; model `tools`
    /// gets the Responses function-call stream, `http-400` an error.
    private func otherOpenAI(path: String, _ json: JSONValue?) -> Response? {
        let stream = json?["stream"]?.boolValue ?? false
        let model = json?["model"]?.stringValue
        let sse = "text/event-stream; charset=utf-8"
        func events(_ wire: String) -> [String] { wire.components(separatedBy: "\n\n").dropLast().map { $0 + "\n\n" } }
        if path.hasSuffix("/v1/responses") {
            if model == "http-400" { return Self.json(WireSamples.responsesError, status: .badRequest) }
            guard stream else { return Self.json(WireSamples.responsesResponse, status: .ok) }
            return Self.chunked(
                events(model == "tools" ? WireSamples.responsesToolStream : WireSamples.responsesStream), contentType: sse)
        }
        if path.hasSuffix("/v1/embeddings") {
            if model == "http-400" { return Self.json(WireSamples.embeddingsError, status: .badRequest) }
            return Self.json(WireSamples.embeddingsResponse, status: .ok)
        }
        if path.hasSuffix("/v1/completions") {
            guard stream else { return Self.json(WireSamples.completionsResponse, status: .ok) }
            var pieces = events(WireSamples.completionsStream)
            if json?["stream_options"]?["include_usage"]?.boolValue != true {
                // Without include_usage OpenAI sends neither the usage member nor the usage chunk.
                pieces = pieces.filter { !$0.contains(#""choices":[]"#) }
                    .map { $0.replacingOccurrences(of: #","usage":null"#, with: "") }
            }
            return Self.chunked(pieces, contentType: sse)
        }
        return nil
    }

    /// A gzip-encoded chat completion whose answer repeats the last message.
    static func echo(_ json: JSONValue?) -> Response {
        let said = json?["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
        let completion = JSONValue.object([
            "id": .string("chatcmpl-echo"), "object": .string("chat.completion"), "created": .int(1_700_000_000),
            "model": .string("echo-gzip"),
            "choices": .array([
                .object([
                    "index": .int(0),
                    "message": .object(["role": .string("assistant"), "content": .string("You said: " + said)]),
                    "finish_reason": .string("stop"),
                ])
            ]),
            "usage": .object(["prompt_tokens": .int(10), "completion_tokens": .int(5), "total_tokens": .int(15)]),
        ])
        var plain = ByteBuffer(string: completion.canonicalText)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.contentEncoding] = "gzip"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: try! plain.compress(with: .gzip())))
    }

    private func respond(model: String, stream: Bool, includeUsage: Bool) -> Response {
        switch model {
        case "http-500":
            return Self.json(WireSamples.serverError, status: .internalServerError)
        case "html":  // a captive portal or a misconfigured base URL
            var headers = HTTPFields()
            headers[.contentType] = "text/html"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "<html><body>Sign in</body></html>")))
        case "gzip":
            var plain = ByteBuffer(string: WireSamples.completion)
            let zipped = try! plain.compress(with: .gzip())
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            headers[.contentEncoding] = "gzip"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: zipped))
        default:
            break
        }
        guard stream else { return Self.json(WireSamples.completion, status: .ok) }
        let script: StreamScript =
            switch model {
            case "tools": WireSamples.toolCall
            case "usage-every-chunk": WireSamples.usageEveryChunk
            case "error-mid-stream": WireSamples.errorMidStream
            default: WireSamples.text
            }
        let events = script.events(includeUsage: includeUsage)
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream; charset=utf-8"
        headers[.cacheControl] = "no-cache"
        let gate = self.gate.stream
        return Response(
            status: .ok, headers: headers,
            body: .init { writer in
                for (n, event) in events.enumerated() {
                    if model == "paced" { try await Task.sleep(for: .milliseconds(60)) }  // a model that thinks
                    do {
                        try await writer.write(ByteBuffer(string: event))
                    } catch {
                        self.aborted.withLock { $0 += 1 }
                        throw error
                    }
                    if n == 1, model == "slow" {
                        var iterator = gate.makeAsyncIterator()
                        _ = await iterator.next()
                    }
                    if n == 0, model == "stall" { try await Task.sleep(for: .seconds(30)) }
                    if n == 1, model == "cut" {
                        try await Task.sleep(for: .milliseconds(50))  // let the two chunks leave first
                        throw CancellationError()
                    }
                }
                if model == "linger" { try await Task.sleep(for: .milliseconds(500)) }  // `[DONE]` sent, body not ended
                try await writer.finish(nil)
            })
    }

    /// Anthropic Messages: the stream or message of `WireSamples`; model `overloaded` gets a 529.
    private func anthropic(_ json: JSONValue?) -> Response {
        if json?["model"]?.stringValue == "overloaded" {
            return Self.json(WireSamples.anthropicOverloaded, status: .init(code: 529, reasonPhrase: "Overloaded"))
        }
        guard json?["stream"]?.boolValue == true else { return Self.json(WireSamples.anthropicMessage, status: .ok) }
        return Self.chunked(WireSamples.anthropicStream.components(separatedBy: "\n\n").dropLast().map { $0 + "\n\n" },
            contentType: "text/event-stream; charset=utf-8")
    }

    /// Ollama: NDJSON unless `"stream": false` (streaming is Ollama's default).
    private func ollama(_ json: JSONValue?, generate: Bool) -> Response {
        let stream = json?["stream"]?.boolValue ?? true
        if !stream { return Self.json(WireSamples.ollamaChatResponse, status: .ok) }
        let wire = generate ? WireSamples.ollamaGenerateStream : WireSamples.ollamaChatStream
        return Self.chunked(wire.split(separator: "\n").map { $0 + "\n" }, contentType: "application/x-ndjson")
    }

    /// Writes each piece as its own chunk.
    static func chunked(_ pieces: [String], contentType: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        return Response(
            status: .ok, headers: headers,
            body: .init { writer in
                for piece in pieces { try await writer.write(ByteBuffer(string: piece)) }
                try await writer.finish(nil)
            })
    }

    static func json(_ text: String, status: HTTPResponse.Status) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// Counts connections opened, and those whose peer closed its side.
final class ConnectionWatcher: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = Any
    let onOpen: @Sendable () -> Void
    let onClose: @Sendable () -> Void

    init(onOpen: @escaping @Sendable () -> Void, onClose: @escaping @Sendable () -> Void) {
        self.onOpen = onOpen
        self.onClose = onClose
    }

    func handlerAdded(context: ChannelHandlerContext) { onOpen() }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { onClose() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }
}
