import LLMTapCore
import NIOCore

extension OpenAIChat {
    /// Accumulates a `chat.completion.chunk` SSE stream into response facts:
    /// text per choice, tool calls assembled from their fragments, the last
    /// finish reason, the usage (the last one reported — never summed), a
    /// mid-stream error, and the arrival time of every content chunk.
    public struct StreamAccumulator: Sendable {
        private var facts = ResponseFacts()
        private var texts: [Int: String] = [:]
        /// Tool calls per choice, then per tool-call index, in arrival order.
        private var calls: [Int: [Int: ToolCall]] = [:]
        private var usageCount = 0

        struct ToolCall: Sendable {
            var id: String?
            var type: String?
            var name: String = ""
            var arguments: String = ""
        }

        public init() {}

        /// The first choice's text so far.
        public var text: String { texts[0] ?? "" }

        public mutating func consume(_ event: SSEEvent, at time: UInt64) {
            let data = event.data
            if data == "[DONE]" {
                facts.completed = true
                return
            }
            var utf8 = data
            if utf8.withUTF8({ consumeCommon($0, at: time) }) { return }
            guard let json = JSONValue.parse(Array(data.utf8)) else { return }
            consume(json, at: time)
        }

        /// What a chunk says, from its parsed JSON (any chunk).
        mutating func consume(_ json: JSONValue, at time: UInt64) {
            readError(json, into: &facts)
            if let model = json["model"]?.stringValue, facts.responseModel == nil { facts.responseModel = model }
            if let usage = json["usage"], !usage.isNull {
                usageCount += 1
                facts.usage = parseUsage(usage)
            }
            var carriesContent = false
            for (position, choice) in (json["choices"]?.arrayValue ?? []).enumerated() {
                let index = Int(choice["index"]?.intValue ?? Int64(position))
                let delta = choice["delta"] ?? choice["message"]
                for key in ["content", "reasoning_content", "reasoning", "refusal"] {
                    if let piece = delta?[key]?.stringValue, !piece.isEmpty {
                        carriesContent = true
                        if key == "content" { texts[index, default: ""] += piece }
                    }
                }
                if let piece = choice["text"]?.stringValue, !piece.isEmpty {  // legacy completions
                    carriesContent = true
                    texts[index, default: ""] += piece
                }
                for fragment in delta?["tool_calls"]?.arrayValue ?? [] {
                    carriesContent = true
                    let callIndex = Int(fragment["index"]?.intValue ?? 0)
                    var call = calls[index, default: [:]][callIndex] ?? ToolCall()
                    if let id = fragment["id"]?.stringValue { call.id = id }
                    if let type = fragment["type"]?.stringValue { call.type = type }
                    if let name = fragment["function"]?["name"]?.stringValue { call.name += name }
                    if let arguments = fragment["function"]?["arguments"]?.stringValue { call.arguments += arguments }
                    calls[index, default: [:]][callIndex] = call
                }
                if let reason = choice["finish_reason"]?.stringValue, index == 0 || facts.finishReason == nil {
                    facts.finishReason = reason
                }
            }
            if carriesContent { facts.contentTimes.append(time) }
        }

        /// The common chunk — text, reasoning, a finish reason, usage; no error or tool calls —
        /// read with `JSONScanner`, without parsing the members the record does not need. Exactly
        /// what `consume(_:at:)` does with the same chunk; false, having changed nothing, for
        /// anything else (those take the full parse): not an object, not JSON, a key repeated.
        private mutating func consumeCommon(_ bytes: UnsafeBufferPointer<UInt8>, at time: UInt64) -> Bool {
            var scanner = JSONScanner(bytes)
            var model: String?
            var usage: JSONValue?
            var choices: [ChoiceScan.Choice] = []
            var seen = ChoiceScan.Seen()
            let read = scanner.members { key, scanner in
                switch key {
                case "model":
                    guard seen.first(0) else { return false }
                    // Only the first chunk's model is kept: the rest are stepped over, not made Strings.
                    if facts.responseModel == nil { model = scanner.stringValue() } else { scanner.skip() }
                    return true
                case "error":
                    guard scanner.isNull, seen.first(1) else { return false }
                    scanner.skip()
                    return true
                case "usage":
                    // The stream's last chunk reports it: parsed alone, not the whole chunk again.
                    return seen.first(2) && scanner.valueUnlessNull(into: &usage)
                case "choices":
                    guard seen.first(3), scanner.isArray else { return false }
                    return scanner.elements { position, scanner in
                        guard let choice = ChoiceScan.choice(&scanner, position: position) else { return false }
                        choices.append(choice)
                        return true
                    }
                default:
                    scanner.skip()
                    return true
                }
            }
            guard read, scanner.finished() else { return false }
            if let model, facts.responseModel == nil { facts.responseModel = model }
            if let usage {
                usageCount += 1
                facts.usage = parseUsage(usage)
            }
            var carriesContent = false
            for choice in choices {
                let pieces = choice.delta ?? choice.message
                if let content = pieces?.content, !content.isEmpty {
                    carriesContent = true
                    texts[choice.index, default: ""] += content
                }
                if pieces?.other == true { carriesContent = true }
                if let text = choice.text, !text.isEmpty {
                    carriesContent = true
                    texts[choice.index, default: ""] += text
                }
                if let reason = choice.finishReason, choice.index == 0 || facts.finishReason == nil {
                    facts.finishReason = reason
                }
            }
            if carriesContent { facts.contentTimes.append(time) }
            return true
        }

        /// The facts so far; callable at any point, e.g. when the client hung up.
        public var result: ResponseFacts {
            var out = facts
            var toolCalls: [JSONValue] = []
            for choice in calls.keys.sorted() {
                let perChoice = calls[choice]!
                for callIndex in perChoice.keys.sorted() {
                    let call = perChoice[callIndex]!
                    var members: [String: JSONValue] = [
                        "type": .string(call.type ?? "function"),
                        "function": .object(["name": .string(call.name), "arguments": .string(call.arguments)]),
                    ]
                    if let id = call.id { members["id"] = .string(id) }
                    if choice != 0 { members["choice_index"] = .int(Int64(choice)) }
                    toolCalls.append(.object(members))
                }
            }
            assignTexts(texts, toolCalls: toolCalls, into: &out)
            out.usageRepeated = usageCount > 1
            if out.errorMessage != nil || out.errorType != nil { out.completed = false }
            return out
        }
    }
}
