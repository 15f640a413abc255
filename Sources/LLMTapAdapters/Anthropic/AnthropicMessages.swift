import LLMTapCore
import NIOCore

/// Anthropic's Messages API (`POST /v1/messages`), JSON and SSE.
public enum AnthropicMessages {
    /// Model, parameters and context (`system` first, as a system message, then `messages`).
    public static func parseRequest(_ body: ByteBuffer) -> RequestFacts {
        var facts = RequestFacts()
        guard let json = JSONValue.parse(body.readableBytesView), let members = json.objectValue else { return facts }
        facts.isValidJSON = true
        facts.model = members["model"]?.stringValue
        facts.isStream = members["stream"]?.boolValue ?? false
        facts.sessionID = members["metadata"]?["session_id"]?.stringValue ?? members["session_id"]?.stringValue
        var context: [JSONValue] = []
        if let system = members["system"], !system.isNull {
            context.append(.object(["role": .string("system"), "content": system]))
        }
        context += members["messages"]?.arrayValue ?? []
        facts.setConversation(context)
        facts.setParameters(members, without: ["messages", "model", "system"])
        return facts
    }

    /// A non-streaming `message` (or an error object).
    public static func parseResponse(_ body: ByteBuffer) -> ResponseFacts {
        var facts = ResponseFacts()
        guard let json = JSONValue.parse(body.readableBytesView) else { return facts }
        OpenAIChat.readError(json, into: &facts)
        facts.responseModel = json["model"]?.stringValue
        facts.finishReason = json["stop_reason"]?.stringValue
        if let usage = json["usage"], !usage.isNull { facts.usage = parseUsage(usage) }
        var text = ""
        var calls: [JSONValue] = []
        for block in json["content"]?.arrayValue ?? [] {
            switch block["type"]?.stringValue {
            case "text": text += block["text"]?.stringValue ?? ""
            case "tool_use":
                calls.append(toolCall(id: block["id"]?.stringValue, name: block["name"]?.stringValue, arguments: block["input"]?.canonicalText ?? "{}"))
            default: break
            }
        }
        if json["content"] != nil { facts.output = text }
        if !calls.isEmpty { facts.toolCalls = .array(calls) }
        facts.completed = facts.errorType == nil && json["type"]?.stringValue == "message"
        return facts
    }

    /// Tool calls recorded in OpenAI's shape, so every API's tool calls read alike.
    static func toolCall(id: String?, name: String?, arguments: String) -> JSONValue {
        var call: [String: JSONValue] = [
            "type": .string("function"),
            "function": .object(["name": .string(name ?? ""), "arguments": .string(arguments)]),
        ]
        if let id { call["id"] = .string(id) }
        return .object(call)
    }

    /// Anthropic's `input_tokens` leaves out cache reads and writes; llmtap's input count includes them.
    static func parseUsage(_ usage: JSONValue) -> Usage {
        let fresh = usage["input_tokens"]?.intValue
        let read = usage["cache_read_input_tokens"]?.intValue
        let written = usage["cache_creation_input_tokens"]?.intValue
        let input = fresh.map { $0 + (read ?? 0) + (written ?? 0) }
        return Usage(
            inputTokens: input, outputTokens: usage["output_tokens"]?.intValue,
            cachedInputTokens: read, cacheWriteInputTokens: written, source: .upstream)
    }

    /// Accumulates the Messages event stream: `message_start` (model, input usage),
    /// `content_block_start/delta/stop` (text, tool input JSON, thinking),
    /// `message_delta` (stop reason, output usage), `message_stop`, `ping`, `error`.
    public struct StreamAccumulator: Sendable {
        private var facts = ResponseFacts()
        public private(set) var text = ""
        private var blocks: [Int: (type: String, id: String?, name: String?, json: String)] = [:]
        private var usage: JSONValue = .object([:])
        private var usageEvents = 0

        public init() {}

        public mutating func consume(_ event: SSEEvent, at time: UInt64) {
            guard let json = JSONValue.parse(Array(event.data.utf8)) else { return }
            let type = json["type"]?.stringValue ?? event.event ?? ""
            switch type {
            case "message_start":
                facts.responseModel = json["message"]?["model"]?.stringValue
                merge(usage: json["message"]?["usage"])
            case "content_block_start":
                let index = Int(json["index"]?.intValue ?? 0)
                let block = json["content_block"]
                let blockType = block?["type"]?.stringValue ?? "text"
                blocks[index] = (blockType, block?["id"]?.stringValue, block?["name"]?.stringValue, "")
                if let start = block?["text"]?.stringValue, !start.isEmpty {
                    text += start
                    facts.contentTimes.append(time)
                }
            case "content_block_delta":
                let index = Int(json["index"]?.intValue ?? 0)
                let delta = json["delta"]
                switch delta?["type"]?.stringValue {
                case "text_delta":
                    text += delta?["text"]?.stringValue ?? ""
                    facts.contentTimes.append(time)
                case "input_json_delta":
                    blocks[index]?.json += delta?["partial_json"]?.stringValue ?? ""
                    facts.contentTimes.append(time)
                case "thinking_delta":
                    facts.contentTimes.append(time)
                default:
                    break
                }
            case "message_delta":
                if let reason = json["delta"]?["stop_reason"]?.stringValue { facts.finishReason = reason }
                merge(usage: json["usage"])
            case "message_stop":
                facts.completed = true
            case "error":
                OpenAIChat.readError(json, into: &facts)
            default:
                break  // ping, content_block_stop, unknown events
            }
        }

        private mutating func merge(usage update: JSONValue?) {
            guard let update = update?.objectValue else { return }
            usageEvents += 1
            var merged = usage.objectValue ?? [:]
            for (key, value) in update where !value.isNull { merged[key] = value }
            usage = .object(merged)
        }

        public var result: ResponseFacts {
            var out = facts
            out.output = text
            let calls = blocks.keys.sorted().compactMap { index -> JSONValue? in
                guard let block = blocks[index], block.type == "tool_use" else { return nil }
                return AnthropicMessages.toolCall(id: block.id, name: block.name, arguments: block.json.isEmpty ? "{}" : block.json)
            }
            if !calls.isEmpty { out.toolCalls = .array(calls) }
            if usageEvents > 0 { out.usage = AnthropicMessages.parseUsage(usage) }
            if out.errorType != nil { out.completed = false }
            return out
        }
    }
}
