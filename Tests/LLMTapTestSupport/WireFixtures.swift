/// One recorded exchange of a wire API and what its record must say: the conformance
/// suite runs every adapter over these (non-stream, stream, tool use, error, cut-off).
public struct WireFixture: Sendable, CustomStringConvertible {
    public var name: String
    /// The `api_format` (a `WireAPI` raw value).
    public var api: String
    public var provider: String
    public var request: String
    public var status: Int = 200
    public var contentType: String
    public var response: String
    public var expected: Expected

    public struct Expected: Sendable {
        public var model: String?
        public var responseModel: String?
        /// Messages (or inputs) in the context.
        public var contextCount: Int?
        public var chatInput: String?
        public var output: String?
        public var toolCalls: [String] = []
        public var finishReason: String?
        public var inputTokens: Int64?
        public var outputTokens: Int64?
        /// From the bundled pricing table; nil for an unpriced model or unknown usage.
        public var costNanoUSD: Int64?
        public var completed: Bool
        public var errorType: String?
        /// The stream carries content whose arrival times give TTFT and tokens/s.
        public var timed: Bool = false
    }

    public var description: String { name }
}

public enum WireFixtures {
    static let sse = "text/event-stream; charset=utf-8"
    static let json = "application/json"
    static let ndjson = "application/x-ndjson"

    public static let all: [WireFixture] = openAIChat + openAIOthers + anthropic + ollama

    static let chatRequest = WireSamples.request(stream: true, extra: #","stream_options":{"include_usage":true}"#)

    static let openAIChat: [WireFixture] = [
        WireFixture(
            name: "openai.chat stream", api: "openai.chat", provider: "openai", request: chatRequest,
            contentType: sse, response: WireSamples.text.bytes(includeUsage: true),
            expected: .init(
                model: "gpt-4o-mini", responseModel: "gpt-4o-mini-2024-07-18", contextCount: 2,
                chatInput: "Capital of France?", output: "Hello there!", finishReason: "stop", inputTokens: 12,
                outputTokens: 4, costNanoUSD: 12 * 150 + 4 * 600, completed: true, timed: true)),
        WireFixture(
            name: "openai.chat non-stream", api: "openai.chat", provider: "openai",
            request: WireSamples.request(stream: false), contentType: json, response: WireSamples.completion,
            expected: .init(
                model: "gpt-4o-mini", responseModel: "gpt-4o-mini-2024-07-18", contextCount: 2,
                chatInput: "Capital of France?", output: "Paris is the capital of France.", finishReason: "stop",
                inputTokens: 2048, outputTokens: 8, costNanoUSD: 1024 * 150 + 1024 * 75 + 8 * 600, completed: true)),
        WireFixture(
            name: "openai.chat tool use", api: "openai.chat", provider: "openai", request: chatRequest,
            contentType: sse, response: WireSamples.toolCall.bytes(includeUsage: true),
            expected: .init(
                model: "gpt-4o-mini", responseModel: "gpt-4o-mini-2024-07-18", contextCount: 2,
                chatInput: "Capital of France?", toolCalls: ["get_weather"], finishReason: "tool_calls",
                inputTokens: 80, outputTokens: 18, costNanoUSD: 80 * 150 + 18 * 600, completed: true, timed: true)),
        WireFixture(
            name: "openai.chat error", api: "openai.chat", provider: "openai",
            request: WireSamples.request(stream: false), status: 500, contentType: json,
            response: WireSamples.serverError,
            expected: .init(
                model: "gpt-4o-mini", contextCount: 2, chatInput: "Capital of France?", completed: false,
                errorType: "server_error")),
        WireFixture(
            name: "openai.chat cut-off stream", api: "openai.chat", provider: "openai", request: chatRequest,
            contentType: sse,
            response: StreamScript(chunks: Array(WireSamples.text.chunks.prefix(3)), usage: nil, done: false)
                .bytes(includeUsage: false),
            expected: .init(
                model: "gpt-4o-mini", responseModel: "gpt-4o-mini-2024-07-18", contextCount: 2,
                chatInput: "Capital of France?", output: "Hello there", completed: false, timed: true)),
    ]

    static let openAIOthers: [WireFixture] = [
        WireFixture(
            name: "openai.completions non-stream", api: "openai.completions", provider: "openai",
            request: WireSamples.completionsRequest(stream: false), contentType: json,
            response: WireSamples.completionsResponse,
            expected: .init(
                model: "gpt-3.5-turbo-instruct", responseModel: "gpt-3.5-turbo-instruct", chatInput: "Say this is a test",
                output: "\n\nThis is indeed a test", finishReason: "length", inputTokens: 5, outputTokens: 7,
                costNanoUSD: 5 * 1500 + 7 * 2000, completed: true)),
        WireFixture(
            name: "openai.completions stream", api: "openai.completions", provider: "openai",
            request: WireSamples.completionsRequest(stream: true), contentType: sse,
            response: WireSamples.completionsStream,
            expected: .init(
                model: "gpt-3.5-turbo-instruct", responseModel: "gpt-3.5-turbo-instruct", chatInput: "Say this is a test",
                output: "This is a test", finishReason: "length", inputTokens: 5, outputTokens: 4,
                costNanoUSD: 5 * 1500 + 4 * 2000, completed: true, timed: true)),
        WireFixture(
            name: "openai.embeddings", api: "openai.embeddings", provider: "openai",
            request: WireSamples.embeddingsRequest, contentType: json, response: WireSamples.embeddingsResponse,
            expected: .init(
                model: "text-embedding-3-small", responseModel: "text-embedding-3-small", contextCount: 2,
                chatInput: "The waiter was friendly", inputTokens: 8, outputTokens: 0, costNanoUSD: 8 * 20,
                completed: true)),
        WireFixture(
            name: "openai.embeddings error", api: "openai.embeddings", provider: "openai",
            request: WireSamples.embeddingsRequest, status: 400, contentType: json,
            response: WireSamples.embeddingsError,
            expected: .init(
                model: "text-embedding-3-small", contextCount: 2, chatInput: "The waiter was friendly",
                completed: false, errorType: "invalid_request_error")),
        WireFixture(
            name: "openai.responses non-stream", api: "openai.responses", provider: "openai",
            request: WireSamples.responsesRequest(stream: false), contentType: json,
            response: WireSamples.responsesResponse,
            expected: .init(
                model: "gpt-4.1-mini", responseModel: "gpt-4.1-mini-2025-04-14", contextCount: 2,
                chatInput: "Capital of France?", output: "Paris is the capital.", finishReason: "completed",
                inputTokens: 36, outputTokens: 8, costNanoUSD: 36 * 400 + 8 * 1600, completed: true)),
        WireFixture(
            name: "openai.responses stream", api: "openai.responses", provider: "openai",
            request: WireSamples.responsesRequest(stream: true), contentType: sse,
            response: WireSamples.responsesStream,
            expected: .init(
                model: "gpt-4.1-mini", responseModel: "gpt-4.1-mini-2025-04-14", contextCount: 2,
                chatInput: "Capital of France?", output: "Paris is the capital.", finishReason: "completed",
                inputTokens: 36, outputTokens: 8, costNanoUSD: 36 * 400 + 8 * 1600, completed: true, timed: true)),
        WireFixture(
            name: "openai.responses tool use", api: "openai.responses", provider: "openai",
            request: WireSamples.responsesRequest(stream: true, tools: true), contentType: sse,
            response: WireSamples.responsesToolStream,
            expected: .init(
                model: "gpt-4.1-mini", responseModel: "gpt-4.1-mini-2025-04-14", contextCount: 2,
                chatInput: "Capital of France?", output: "", toolCalls: ["get_weather"], finishReason: "completed",
                inputTokens: 60, outputTokens: 15, costNanoUSD: 60 * 400 + 15 * 1600, completed: true, timed: true)),
        WireFixture(
            name: "openai.responses error", api: "openai.responses", provider: "openai",
            request: WireSamples.responsesRequest(stream: false), status: 400, contentType: json,
            response: WireSamples.responsesError,
            expected: .init(
                model: "gpt-4.1-mini", contextCount: 2, chatInput: "Capital of France?", completed: false,
                errorType: "invalid_request_error")),
        WireFixture(
            name: "openai.responses cut-off stream", api: "openai.responses", provider: "openai",
            request: WireSamples.responsesRequest(stream: true), contentType: sse,
            response: WireSamples.responsesCutStream,
            expected: .init(
                model: "gpt-4.1-mini", responseModel: "gpt-4.1-mini-2025-04-14", contextCount: 2,
                chatInput: "Capital of France?", output: "Paris is the capital.", completed: false, timed: true)),
    ]

    static let anthropic: [WireFixture] = [
        WireFixture(
            name: "anthropic stream with tool use", api: "anthropic.messages", provider: "anthropic",
            request: WireSamples.anthropicRequest(stream: true), contentType: sse,
            response: WireSamples.anthropicStream,
            expected: .init(
                model: "claude-3-5-haiku-20241022", responseModel: "claude-3-5-haiku-20241022", contextCount: 2,
                chatInput: "Capital of France?", output: "Paris it is.", toolCalls: ["get_weather"],
                finishReason: "tool_use", inputTokens: 1125, outputTokens: 42,
                // 25 fresh at $0.80, 1000 cache reads at $0.08, 100 cache writes at $1.00, 42 out at $4.00 per 1M
                costNanoUSD: 25 * 800 + 1000 * 80 + 100 * 1000 + 42 * 4000, completed: true, timed: true)),
        WireFixture(
            name: "anthropic non-stream", api: "anthropic.messages", provider: "anthropic",
            request: WireSamples.anthropicRequest(stream: false), contentType: json,
            response: WireSamples.anthropicMessage,
            expected: .init(
                model: "claude-3-5-haiku-20241022", responseModel: "claude-3-5-haiku-20241022", contextCount: 2,
                chatInput: "Capital of France?", output: "Paris.", finishReason: "end_turn", inputTokens: 20,
                outputTokens: 4, costNanoUSD: 20 * 800 + 4 * 4000, completed: true)),
        WireFixture(
            name: "anthropic error", api: "anthropic.messages", provider: "anthropic",
            request: WireSamples.anthropicRequest(stream: false), status: 529, contentType: json,
            response: WireSamples.anthropicOverloaded,
            expected: .init(
                model: "claude-3-5-haiku-20241022", contextCount: 2, chatInput: "Capital of France?", completed: false,
                errorType: "overloaded_error")),
        WireFixture(
            name: "anthropic cut-off stream", api: "anthropic.messages", provider: "anthropic",
            request: WireSamples.anthropicRequest(stream: true), contentType: sse,
            response: WireSamples.anthropicStream.components(separatedBy: "\n\n").prefix(5).map { $0 + "\n\n" }.joined(),
            expected: .init(
                model: "claude-3-5-haiku-20241022", responseModel: "claude-3-5-haiku-20241022", contextCount: 2,
                chatInput: "Capital of France?", output: "Paris it is.", inputTokens: 1125, outputTokens: 1,
                costNanoUSD: 25 * 800 + 1000 * 80 + 100 * 1000 + 1 * 4000, completed: false, timed: true)),
    ]

    static let ollama: [WireFixture] = [
        WireFixture(
            name: "ollama.chat stream", api: "ollama.chat", provider: "ollama",
            request: WireSamples.ollamaChatRequest(stream: nil), contentType: ndjson,
            response: WireSamples.ollamaChatStream,
            expected: .init(
                model: "llama3.2", responseModel: "llama3.2", contextCount: 1, chatInput: "Why is the sky blue?",
                output: "Rayleigh scattering.", finishReason: "stop", inputTokens: 26, outputTokens: 4,
                costNanoUSD: nil, completed: true, timed: true)),
        WireFixture(
            name: "ollama.chat non-stream", api: "ollama.chat", provider: "ollama",
            request: WireSamples.ollamaChatRequest(stream: false), contentType: json,
            response: WireSamples.ollamaChatResponse,
            expected: .init(
                model: "llama3.2", responseModel: "llama3.2", contextCount: 1, chatInput: "Why is the sky blue?",
                output: "Rayleigh scattering.", finishReason: "stop", inputTokens: 26, outputTokens: 4,
                completed: true)),
        WireFixture(
            name: "ollama.chat tool use", api: "ollama.chat", provider: "ollama",
            request: WireSamples.ollamaChatRequest(stream: false), contentType: json,
            response: WireSamples.ollamaToolResponse,
            expected: .init(
                model: "llama3.2", responseModel: "llama3.2", contextCount: 1, chatInput: "Why is the sky blue?",
                output: "", toolCalls: ["get_weather"], finishReason: "stop", inputTokens: 90, outputTokens: 20,
                completed: true)),
        WireFixture(
            name: "ollama.chat error", api: "ollama.chat", provider: "ollama",
            request: WireSamples.ollamaChatRequest(stream: false), status: 404, contentType: json,
            response: WireSamples.ollamaNotFound,
            expected: .init(
                model: "llama3.2", contextCount: 1, chatInput: "Why is the sky blue?", output: "", completed: false,
                errorType: "error")),
        WireFixture(
            name: "ollama.chat cut-off stream", api: "ollama.chat", provider: "ollama",
            request: WireSamples.ollamaChatRequest(stream: true), contentType: ndjson,
            response: String(WireSamples.ollamaChatStream.split(separator: "\n")[0]) + "\n",
            expected: .init(
                model: "llama3.2", responseModel: "llama3.2", contextCount: 1, chatInput: "Why is the sky blue?",
                output: "Rayleigh", completed: false, timed: true)),
        WireFixture(
            name: "ollama.generate stream", api: "ollama.generate", provider: "ollama",
            request: #"{"model":"llama3.2","prompt":"Why is the sky blue?","system":"Be brief."}"#,
            contentType: ndjson, response: WireSamples.ollamaGenerateStream,
            expected: .init(
                model: "llama3.2", responseModel: "llama3.2", contextCount: 2, chatInput: "Why is the sky blue?",
                output: "The sky", finishReason: "stop", inputTokens: 5, outputTokens: 2, completed: true,
                timed: true)),
    ]
}
