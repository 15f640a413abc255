import LLMTapCore
import NIOCore

/// OpenAI's Responses API (`POST /v1/responses`): `input` (a string or a list of
/// items) plus `instructions`, answered with a `response` object whose `output`
/// is a list of items (messages with `output_text` parts, `function_call`s,
/// reasoning), or with an SSE stream of typed events ending in `response.completed`.
public enum OpenAIResponses {
    /// The context is `instructions` as a system message, then the input items
    /// (a string input is one user message).
    public static func parseRequest(_ body: ByteBuffer) -> RequestFacts {
        var facts = RequestFacts()
        guard let json = JSONValue.parse(body.readableBytesView), let members = json.objectValue else { return facts }
        facts.isValidJSON = true
        facts.model = members["model"]?.stringValue
        facts.isStream = members["stream"]?.boolValue ?? false
        facts.sessionID = members["session_id"]?.stringValue ?? members["metadata"]?["session_id"]?.stringValue
        var context: [JSONValue] = []
        if let instructions = members["instructions"]?.stringValue {
            context.append(.object(["role": .string("system"), "content": .string(instructions)]))
        }
        switch members["input"] {
        case .string(let text)?:
            context.append(.object(["role": .string("user"), "content": .string(text)]))
        case .array(let items)?:
            context += items
        default:
            break
        }
        facts.setConversation(context)
        facts.setParameters(members, without: ["input", "model", "instructions"])
        return facts
    }

    /// A non-streaming `response` object (or an error object).
    public static func parseResponse(_ body: ByteBuffer) -> ResponseFacts {
        var facts = ResponseFacts()
        guard let json = JSONValue.parse(body.readableBytesView) else { return facts }
        OpenAIChat.readError(json, into: &facts)
        read(response: json, into: &facts, text: nil)
        return facts
    }

    /// Model, output, tool calls, finish reason and usage of a `response` object. `text`,
    /// when given, is the output already gathered from the stream's deltas.
    static func read(response json: JSONValue, into facts: inout ResponseFacts, text: String?) {
        if let model = json["model"]?.stringValue { facts.responseModel = model }
        if let usage = json["usage"], !usage.isNull { facts.usage = parseUsage(usage) }
        var output = ""
        var calls: [JSONValue] = []
        for item in json["output"]?.arrayValue ?? [] {
            switch item["type"]?.stringValue {
            case "message":
                for part in item["content"]?.arrayValue ?? [] where part["type"]?.stringValue == "output_text" {
                    output += part["text"]?.stringValue ?? ""
                }
            case "function_call":
                calls.append(
                    AnthropicMessages.toolCall(
                        id: item["call_id"]?.stringValue ?? item["id"]?.stringValue, name: item["name"]?.stringValue,
                        arguments: item["arguments"]?.stringValue ?? "{}"))
            default:
                break
            }
        }
        if json["output"] != nil { facts.output = text.flatMap { $0.isEmpty ? nil : $0 } ?? output }
        if !calls.isEmpty { facts.toolCalls = .array(calls) }
        let status = json["status"]?.stringValue
        // The API's own words: `completed`, or why the response is incomplete (`max_output_tokens`).
        if let status { facts.finishReason = json["incomplete_details"]?["reason"]?.stringValue ?? status }
        if let error = json["error"], !error.isNull, facts.errorType == nil {
            facts.errorType = error["code"]?.stringValue ?? error["type"]?.stringValue ?? "error"
            facts.errorMessage = error["message"]?.stringValue
        }
        facts.completed = status == "completed" && facts.errorType == nil
    }

    static func parseUsage(_ usage: JSONValue) -> Usage {
        Usage(
            inputTokens: usage["input_tokens"]?.intValue,
            outputTokens: usage["output_tokens"]?.intValue,
            totalTokens: usage["total_tokens"]?.intValue,
            cachedInputTokens: usage["input_tokens_details"]?["cached_tokens"]?.intValue,
            reasoningTokens: usage["output_tokens_details"]?["reasoning_tokens"]?.intValue,
            source: .upstream)
    }

    /// Accumulates the event stream: `response.output_text.delta` (text),
    /// `response.function_call_arguments.delta` and `response.reasoning_*.delta` (content
    /// timing), and the final `response.completed` / `response.incomplete` /
    /// `response.failed`, whose embedded response gives usage, tool calls and status.
    public struct StreamAccumulator: Sendable {
        private var facts = ResponseFacts()
        public private(set) var text = ""
        private var final: JSONValue?

        public init() {}

        public mutating func consume(_ event: SSEEvent, at time: UInt64) {
            guard let json = JSONValue.parse(Array(event.data.utf8)) else { return }
            let type = json["type"]?.stringValue ?? event.event ?? ""
            switch type {
            case "response.created", "response.in_progress":
                if let model = json["response"]?["model"]?.stringValue { facts.responseModel = model }
            case "response.output_text.delta":
                text += json["delta"]?.stringValue ?? ""
                facts.contentTimes.append(time)
            case "response.function_call_arguments.delta", "response.reasoning_summary_text.delta",
                "response.reasoning_text.delta", "response.refusal.delta":
                facts.contentTimes.append(time)
            case "response.completed", "response.incomplete", "response.failed":
                final = json["response"]
            case "error":
                facts.errorType = json["code"]?.stringValue ?? json["error"]?["type"]?.stringValue ?? "error"
                facts.errorMessage = json["message"]?.stringValue ?? json["error"]?["message"]?.stringValue
            default:
                break
            }
        }

        public var result: ResponseFacts {
            var out = facts
            out.output = text
            if let final {
                OpenAIResponses.read(response: final, into: &out, text: text)
            }
            if out.errorType != nil { out.completed = false }
            return out
        }
    }
}
