import LLMTapCore
import NIOCore

/// Ollama's native API: `POST /api/chat` (messages) and `POST /api/generate` (prompt),
/// NDJSON streams (the default: `"stream"` is true unless set false) or one JSON object.
public enum Ollama {
    public static func parseRequest(_ body: ByteBuffer, generate: Bool) -> RequestFacts {
        var facts = RequestFacts()
        guard let json = JSONValue.parse(body.readableBytesView), let members = json.objectValue else { return facts }
        facts.isValidJSON = true
        facts.model = members["model"]?.stringValue
        facts.isStream = members["stream"]?.boolValue ?? true
        facts.sessionID = members["session_id"]?.stringValue ?? members["metadata"]?["session_id"]?.stringValue
        if generate {
            var context: [JSONValue] = []
            if let system = members["system"]?.stringValue { context.append(.object(["role": .string("system"), "content": .string(system)])) }
            if let prompt = members["prompt"]?.stringValue {
                context.append(.object(["role": .string("user"), "content": .string(prompt)]))
                facts.chatInput = prompt
            }
            if !context.isEmpty { facts.context = .array(context) }
        } else if let messages = members["messages"] {
            facts.context = messages
            facts.chatInput = OpenAIChat.lastUserText(messages)
        }
        facts.setParameters(members, without: ["messages", "model", "prompt", "system", "images", "context"])
        return facts
    }

    /// Accumulates NDJSON lines (and reads a single non-streamed object the same way).
    public struct StreamAccumulator: Sendable {
        private var facts = ResponseFacts()
        public private(set) var text = ""
        private var calls: [JSONValue] = []
        /// Ollama's own clocks from the final line, in seconds, and its tokens/s.
        private var serverMetrics: [String: JSONValue] = [:]

        public init() {}

        public mutating func consume(_ line: ArraySlice<UInt8>, at time: UInt64) {
            guard let json = JSONValue.parse(line) else { return }
            OpenAIChat.readError(json, into: &facts)
            if facts.responseModel == nil { facts.responseModel = json["model"]?.stringValue }
            let piece = json["message"]?["content"]?.stringValue ?? json["response"]?.stringValue ?? ""
            let thinking = json["message"]?["thinking"]?.stringValue ?? json["thinking"]?.stringValue ?? ""
            var carries = !piece.isEmpty || !thinking.isEmpty
            text += piece
            for call in json["message"]?["tool_calls"]?.arrayValue ?? [] {
                carries = true
                let arguments = call["function"]?["arguments"]
                calls.append(
                    AnthropicMessages.toolCall(
                        id: call["id"]?.stringValue, name: call["function"]?["name"]?.stringValue,
                        arguments: arguments?.stringValue ?? arguments?.canonicalText ?? "{}"))
            }
            if carries { facts.contentTimes.append(time) }
            guard json["done"]?.boolValue == true else { return }
            facts.completed = true
            facts.finishReason = json["done_reason"]?.stringValue ?? "stop"
            let input = json["prompt_eval_count"]?.intValue
            let output = json["eval_count"]?.intValue
            if input != nil || output != nil {
                facts.usage = Usage(inputTokens: input ?? 0, outputTokens: output ?? 0, source: .upstream)
            }
            for key in ["total_duration", "load_duration", "prompt_eval_duration", "eval_duration"] {
                if let nanos = json[key]?.intValue { serverMetrics[key + "_s"] = .double(Double(nanos) / 1e9) }
            }
            if let output, let nanos = json["eval_duration"]?.intValue, nanos > 0 {
                serverMetrics["server_tokens_per_second"] = .double(Double(output) / (Double(nanos) / 1e9))
            }
        }

        public var result: ResponseFacts {
            var out = facts
            out.output = text
            if !calls.isEmpty { out.toolCalls = .array(calls) }
            if !serverMetrics.isEmpty { out.serverMetrics = .object(serverMetrics) }
            if out.errorType != nil || out.errorMessage != nil { out.completed = false }
            return out
        }
    }
}
