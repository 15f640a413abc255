/// OpenAI chat-completions wire samples, in the exact shape and member order of
/// api.openai.com responses (`chat.completion.chunk` objects with
/// `service_tier` and `system_fingerprint`; with `include_usage`, `"usage":null`
/// as the last member of every chunk and one usage-only chunk with
/// `"choices":[]` before `[DONE]`).
public struct StreamScript: Sendable {
    /// Each chunk's JSON object as OpenAI sends it without `include_usage`.
    public var chunks: [String]
    /// The usage object sent in the final chunk when the request asks for it.
    public var usage: String?
    /// Send `data: [DONE]` at the end (a cut stream does not).
    public var done: Bool = true

    public init(chunks: [String], usage: String?, done: Bool = true) {
        self.chunks = chunks
        self.usage = usage
        self.done = done
    }

    /// The SSE events, one string each, as OpenAI would send them.
    public func events(includeUsage: Bool) -> [String] {
        var events = chunks.map { chunk -> String in
            let object = includeUsage && usage != nil ? String(chunk.dropLast()) + #","usage":null}"# : chunk
            return "data: \(object)\n\n"
        }
        if includeUsage, let usage {
            events.append(
                #"data: {"id":"chatcmpl-AZ9tDd5yyEmYwWZJf1xWNEyUwHkLx","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_0aa8d3e20b","choices":[],"usage":"#
                    + usage + "}\n\n")
        }
        if done { events.append("data: [DONE]\n\n") }
        return events
    }

    public func bytes(includeUsage: Bool) -> String { events(includeUsage: includeUsage).joined() }
}

public enum WireSamples {
    static func chunk(_ choices: String) -> String {
        #"{"id":"chatcmpl-AZ9tDd5yyEmYwWZJf1xWNEyUwHkLx","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_0aa8d3e20b","choices":["#
            + choices + "]}"
    }

    static func content(_ text: String) -> String {
        chunk(#"{"index":0,"delta":{"content":"\#(text)"},"logprobs":null,"finish_reason":null}"#)
    }

    static let roleChunk = chunk(
        #"{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}"#)

    static func finish(_ reason: String) -> String {
        chunk(#"{"index":0,"delta":{},"logprobs":null,"finish_reason":"\#(reason)"}"#)
    }

    public static let usage =
        #"{"prompt_tokens":12,"completion_tokens":4,"total_tokens":16,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}"#

    /// "Hello there!" in three content chunks.
    public static let text = StreamScript(
        chunks: [roleChunk, content("Hello"), content(" there"), content("!"), finish("stop")], usage: usage)

    /// A tool call whose arguments arrive in fragments.
    public static let toolCall = StreamScript(
        chunks: [
            chunk(
                #"{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_DdmO9pD3xa9XTPNJ32zg2hcA","type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null},"logprobs":null,"finish_reason":null}"#
            ),
            chunk(#"{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"lo"}}]},"logprobs":null,"finish_reason":null}"#),
            chunk(#"{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"cation\": \"Pa"}}]},"logprobs":null,"finish_reason":null}"#),
            chunk(#"{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ris\"}"}}]},"logprobs":null,"finish_reason":null}"#),
            finish("tool_calls"),
        ],
        usage:
            #"{"prompt_tokens":80,"completion_tokens":18,"total_tokens":98,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}"#
    )

    /// A server that reports cumulative usage on every chunk (vLLM `continuous_usage_stats`).
    public static let usageEveryChunk = StreamScript(
        chunks: (1...3).map { n in
            #"{"id":"cmpl-7","object":"chat.completion.chunk","created":1733000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"content":"w\#(n) "},"logprobs":null,"finish_reason":\#(n == 3 ? "\"length\"" : "null")}],"usage":{"prompt_tokens":9,"total_tokens":\#(9 + n),"completion_tokens":\#(n)}}"#
        },
        usage: nil)

    /// An error object in the middle of a 200 stream, then the end.
    public static let errorMidStream = StreamScript(
        chunks: [
            roleChunk, content("Par"),
            #"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#,
        ],
        usage: nil, done: false)

    /// A non-streaming completion with cached and reasoning tokens.
    public static let completion =
        #"{"id":"chatcmpl-AZ9vK2","object":"chat.completion","created":1733000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Paris is the capital of France.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":2048,"completion_tokens":8,"total_tokens":2056,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_0aa8d3e20b"}"#

    /// OpenAI's answer to a server fault.
    public static let serverError =
        #"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#

    /// A request as the openai SDK sends it.
    public static func request(model: String = "gpt-4o-mini", stream: Bool, extra: String = "") -> String {
        #"{"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":[{"type":"text","text":"Capital of France?"}]}],"model":"\#(model)","stream":\#(stream),"temperature":0.2,"max_tokens":64\#(extra)}"#
    }
}
