import LLMTapCore
import NIOCore

extension OpenAIChat {
    /// Facts of a non-streaming response body (`chat.completion`, or an error object).
    public static func parseResponse(_ body: ByteBuffer) -> ResponseFacts {
        if let scanned = body.readableBytesView.withContiguousStorageIfAvailable(scanCompletion), let facts = scanned {
            return facts
        }
        return parseResponse(JSONValue.parse(body.readableBytesView))
    }

    /// The common completion — text choices, a finish reason, usage; no error or tool calls —
    /// read with `JSONScanner`, without building the members the record does not need (`id`,
    /// `logprobs`, the usage details, …): exactly the facts `parseResponse` gives from the full
    /// parse, or nil for anything else, which takes the full parse. Parsing each response into
    /// a tree was ~3 % of the proxy's CPU at 32 connections.
    static func scanCompletion(_ bytes: UnsafeBufferPointer<UInt8>) -> ResponseFacts? {
        var scanner = JSONScanner(bytes)
        var facts = ResponseFacts()
        var choices: [ChoiceScan.Choice]?
        var usage: JSONValue?
        var seen = ChoiceScan.Seen()
        let read = scanner.members { key, scanner in
            switch key {
            case "model":
                guard seen.first(0) else { return false }
                facts.responseModel = scanner.stringValue()
            case "error":
                guard seen.first(1), scanner.isNull else { return false }
                scanner.skip()
            case "usage":
                guard seen.first(2), scanner.valueUnlessNull(into: &usage) else { return false }
            case "choices":
                guard seen.first(3), scanner.isArray else { return false }
                var read: [ChoiceScan.Choice] = []
                let whole = scanner.elements { position, scanner in
                    guard let choice = ChoiceScan.choice(&scanner, position: position) else { return false }
                    read.append(choice)
                    return true
                }
                guard whole else { return false }
                choices = read
            default:
                scanner.skip()
            }
            return true
        }
        guard read, scanner.finished(), let choices else { return nil }
        if let usage { facts.usage = parseUsage(usage) }
        var texts: [Int: String] = [:]
        for choice in choices {
            // A completion's `message` comes before a `delta` (the full parse's `??`).
            let pieces = choice.message ?? choice.delta
            if pieces?.contentParts == true { return nil }
            if let content = pieces?.content ?? choice.text { texts[choice.index] = content }
            if choice.index == 0 || facts.finishReason == nil, let reason = choice.finishReason {
                facts.finishReason = reason
            }
        }
        assignTexts(texts, toolCalls: [], into: &facts)
        facts.completed = true
        return facts
    }

    /// Facts of a non-streaming response from its full parse (nil: not JSON).
    static func parseResponse(_ json: JSONValue?) -> ResponseFacts {
        var facts = ResponseFacts()
        guard let json else { return facts }
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
