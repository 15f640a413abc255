import LLMTapCore
import NIOCore

extension OpenAIChat {
    /// Facts of a non-streaming response body (`chat.completion`, or an error object).
    public static func parseResponse(_ body: ByteBuffer) -> ResponseFacts {
        var facts = ResponseFacts()
        guard let json = JSONValue.parse(body.readableBytesView) else { return facts }
        readError(json, into: &facts)
        facts.responseModel = json["model"]?.stringValue
        if let usage = json["usage"], !usage.isNull { facts.usage = parseUsage(usage) }
        var texts: [Int: String] = [:]
        var toolCalls: [JSONValue] = []
        for (position, choice) in (json["choices"]?.arrayValue ?? []).enumerated() {
            let index = Int(choice["index"]?.intValue ?? Int64(position))
            let message = choice["message"] ?? choice["delta"]
            if let content = message?["content"]?.plainText ?? choice["text"]?.stringValue {
                texts[index] = content
            }
            for call in message?["tool_calls"]?.arrayValue ?? [] {
                toolCalls.append(index == 0 ? call : withChoiceIndex(call, index))
            }
            if index == 0 || facts.finishReason == nil, let reason = choice["finish_reason"]?.stringValue {
                facts.finishReason = reason
            }
        }
        assignTexts(texts, toolCalls: toolCalls, into: &facts)
        facts.completed = facts.errorType == nil && facts.errorMessage == nil && json["choices"] != nil
        return facts
    }

    static func assignTexts(_ texts: [Int: String], toolCalls: [JSONValue], into facts: inout ResponseFacts) {
        if !texts.isEmpty {
            facts.output = texts[0] ?? texts[texts.keys.min()!]
            if texts.count > 1 { facts.outputs = texts.keys.sorted().map { texts[$0]! } }
        }
        if !toolCalls.isEmpty { facts.toolCalls = .array(toolCalls) }
    }

    static func withChoiceIndex(_ call: JSONValue, _ index: Int) -> JSONValue {
        guard var members = call.objectValue else { return call }
        members["choice_index"] = .int(Int64(index))
        return .object(members)
    }

    static func readError(_ json: JSONValue, into facts: inout ResponseFacts) {
        guard let error = json["error"], !error.isNull else { return }
        if let message = error.stringValue {
            facts.errorMessage = message
            facts.errorType = "error"
        } else {
            facts.errorMessage = error["message"]?.stringValue
            facts.errorType = error["type"]?.stringValue ?? error["code"]?.stringValue ?? "error"
        }
    }

    static func parseUsage(_ usage: JSONValue) -> Usage {
        Usage(
            inputTokens: usage["prompt_tokens"]?.intValue,
            outputTokens: usage["completion_tokens"]?.intValue,
            totalTokens: usage["total_tokens"]?.intValue,
            cachedInputTokens: usage["prompt_tokens_details"]?["cached_tokens"]?.intValue,
            reasoningTokens: usage["completion_tokens_details"]?["reasoning_tokens"]?.intValue,
            source: .upstream
        )
    }
}
