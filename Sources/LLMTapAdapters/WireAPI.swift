import LLMTapCore
import NIOCore

/// The wire APIs llmtap reads, named as records store them (`api_format`).
public enum WireAPI: String, Sendable, CaseIterable {
    /// OpenAI chat completions, as OpenAI and every OpenAI-compatible server speak it.
    case openAIChat = "openai.chat"
    /// OpenAI's legacy completions (`prompt` in, `choices[].text` out).
    case openAICompletions = "openai.completions"
    case openAIEmbeddings = "openai.embeddings"
    case openAIResponses = "openai.responses"
    case anthropicMessages = "anthropic.messages"
    /// Ollama's native `/api/chat` and `/api/generate`.
    case ollamaChat = "ollama.chat"
    case ollamaGenerate = "ollama.generate"
    /// Anything else under a known provider: forwarded byte for byte, recorded with status, sizes and timing.
    case generic

    /// The API a provider path speaks, by its last segments.
    public static func of(endpoint: String) -> WireAPI {
        let path = endpoint.split(separator: "?", maxSplits: 1).first.map(String.init) ?? endpoint
        if path.hasSuffix("/chat/completions") { return .openAIChat }
        if path.hasSuffix("/v1/completions") { return .openAICompletions }
        if path.hasSuffix("/v1/embeddings") { return .openAIEmbeddings }
        if path.hasSuffix("/v1/responses") { return .openAIResponses }
        if path.hasSuffix("/v1/messages") { return .anthropicMessages }
        if path.hasSuffix("/api/chat") { return .ollamaChat }
        if path.hasSuffix("/api/generate") { return .ollamaGenerate }
        return .generic
    }

    /// OpenAI-style streams that `stream_options.include_usage` applies to.
    public var takesStreamOptions: Bool { self == .openAIChat || self == .openAICompletions }

    /// What the adapter reads from a request body.
    public func parseRequest(_ body: ByteBuffer) -> RequestFacts {
        switch self {
        case .openAIChat, .openAICompletions: OpenAIChat.parseRequest(body)
        case .openAIEmbeddings: OpenAIEmbeddings.parseRequest(body)
        case .openAIResponses: OpenAIResponses.parseRequest(body)
        case .anthropicMessages: AnthropicMessages.parseRequest(body)
        case .ollamaChat: Ollama.parseRequest(body, generate: false)
        case .ollamaGenerate: Ollama.parseRequest(body, generate: true)
        case .generic: Self.genericFacts(body)
        }
    }

    /// A call of an API llmtap does not parse: the model, stream flag and session of a JSON body, if any.
    static func genericFacts(_ body: ByteBuffer) -> RequestFacts {
        var facts = RequestFacts()
        guard let json = JSONValue.parse(body.readableBytesView), json.objectValue != nil else { return facts }
        facts.isValidJSON = true
        facts.model = json["model"]?.stringValue
        facts.isStream = json["stream"]?.boolValue ?? false
        facts.sessionID = json["session_id"]?.stringValue ?? json["metadata"]?["session_id"]?.stringValue
        return facts
    }
}

/// Reads one response of a wire API, streamed or not: fed each read as it arrives
/// (for streams and NDJSON), finished with the whole body. Pure: bytes in, facts out.
public struct ResponseParser: Sendable {
    public let api: WireAPI
    /// The response is a stream of events or lines (SSE, NDJSON), not one document.
    public let isStream: Bool
    private var state: State

    private enum State: Sendable {
        case openAI(SSEStreamParser, OpenAIChat.StreamAccumulator)
        case responses(SSEStreamParser, OpenAIResponses.StreamAccumulator)
        case anthropic(SSEStreamParser, AnthropicMessages.StreamAccumulator)
        case ollama(NDJSONStreamParser, Ollama.StreamAccumulator)
        case document
    }

    /// - Parameter contentType: the response's `Content-Type`, which says whether it is a stream.
    public init(api: WireAPI, contentType: String) {
        self.api = api
        let type = contentType.lowercased()
        let eventStream = type.hasPrefix("text/event-stream")
        switch api {
        case .openAIChat, .openAICompletions:
            isStream = eventStream
            state = eventStream ? .openAI(SSEStreamParser(), OpenAIChat.StreamAccumulator()) : .document
        case .openAIResponses:
            isStream = eventStream
            state = eventStream ? .responses(SSEStreamParser(), OpenAIResponses.StreamAccumulator()) : .document
        case .anthropicMessages:
            isStream = eventStream
            state = eventStream ? .anthropic(SSEStreamParser(), AnthropicMessages.StreamAccumulator()) : .document
        case .ollamaChat, .ollamaGenerate:
            // One JSON object when not streaming: the same line parser reads both.
            isStream = type.hasPrefix("application/x-ndjson")
            state = .ollama(NDJSONStreamParser(), Ollama.StreamAccumulator())
        case .openAIEmbeddings, .generic:
            isStream = false
            state = .document
        }
    }

    /// Whether reads are parsed as they arrive (streams and line-delimited bodies).
    public var isIncremental: Bool {
        if case .document = state { return false }
        return true
    }

    /// The first output's text so far (streams; empty for documents until finished).
    public var text: String {
        switch state {
        case .openAI(_, let a): a.text
        case .responses(_, let a): a.text
        case .anthropic(_, let a): a.text
        case .ollama(_, let a): a.text
        case .document: ""
        }
    }

    /// One read of the body (plain, not content-encoded), at a monotonic nanosecond `time`.
    public mutating func feed(_ bytes: ByteBuffer, at time: UInt64) {
        // Events are consumed in place: a copy of the accumulator per read would copy
        // the text gathered so far each time.
        switch state {
        case .openAI(var framing, var accumulator):
            state = .document
            framing.feed(bytes) { accumulator.consume($0, at: time) }
            state = .openAI(framing, accumulator)
        case .responses(var framing, var accumulator):
            state = .document
            framing.feed(bytes) { accumulator.consume($0, at: time) }
            state = .responses(framing, accumulator)
        case .anthropic(var framing, var accumulator):
            state = .document
            framing.feed(bytes) { accumulator.consume($0, at: time) }
            state = .anthropic(framing, accumulator)
        case .ollama(var framing, var accumulator):
            state = .document
            framing.feed(bytes) { accumulator.consume($0, at: time) }
            state = .ollama(framing, accumulator)
        case .document:
            break
        }
    }

    /// The reads of a body at once: `body` holds them all, `reads` says where each ended (offsets
    /// into its readable bytes, ascending) and when it came. The same facts as `feed` read by
    /// read (see `SSEStreamParser.feed(_:readEnds:_:)`), without copying each read (the proxy's
    /// recorder rebuilds every stream from its reads this way).
    public mutating func feed(_ body: ByteBuffer, readEnds reads: [(end: Int, time: UInt64)]) {
        switch state {
        case .openAI(var framing, var accumulator):
            state = .document
            framing.feed(body, readEnds: reads) { accumulator.consume($0, at: $1) }
            state = .openAI(framing, accumulator)
        case .responses(var framing, var accumulator):
            state = .document
            framing.feed(body, readEnds: reads) { accumulator.consume($0, at: $1) }
            state = .responses(framing, accumulator)
        case .anthropic(var framing, var accumulator):
            state = .document
            framing.feed(body, readEnds: reads) { accumulator.consume($0, at: $1) }
            state = .anthropic(framing, accumulator)
        case .ollama, .document:
            var start = 0
            for read in reads {
                feed(body.getSlice(at: body.readerIndex + start, length: read.end - start)!, at: read.time)
                start = read.end
            }
        }
    }

    /// The facts of the whole response. `body` is the whole (decoded) body, read when the
    /// response is one document; a stream has been fed already.
    public func finish(body: ByteBuffer?, at end: UInt64) -> ResponseFacts {
        var facts = parsed(body: body, at: end)
        facts.usage = facts.usage?.plausible
        return facts
    }

    private func parsed(body: ByteBuffer?, at end: UInt64) -> ResponseFacts {
        switch state {
        case .openAI(var framing, var accumulator):
            framing.finish { accumulator.consume($0, at: end) }
            return accumulator.result
        case .responses(var framing, var accumulator):
            framing.finish { accumulator.consume($0, at: end) }
            return accumulator.result
        case .anthropic(var framing, var accumulator):
            framing.finish { accumulator.consume($0, at: end) }
            return accumulator.result
        case .ollama(var framing, var accumulator):
            framing.finish { accumulator.consume($0, at: end) }
            return accumulator.result
        case .document:
            guard let body else { return ResponseFacts() }
            switch api {
            case .openAIChat, .openAICompletions: return OpenAIChat.parseResponse(body)
            case .openAIEmbeddings: return OpenAIEmbeddings.parseResponse(body)
            case .openAIResponses: return OpenAIResponses.parseResponse(body)
            case .anthropicMessages: return AnthropicMessages.parseResponse(body)
            case .ollamaChat, .ollamaGenerate, .generic:
                // Generic calls: an OpenAI-shaped usage or error is still worth keeping.
                guard let json = JSONValue.parse(body.readableBytesView) else { return ResponseFacts() }
                var facts = OpenAIChat.parseResponse(body)
                if json["choices"] == nil { facts.output = nil }
                return facts
            }
        }
    }
}
