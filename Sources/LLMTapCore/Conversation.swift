/// The form in which messages are compared across calls, so that a conversation
/// re-sent turn after turn is recognised: the role, the text, and tool calls by
/// id, name and arguments. Fields clients add or drop when echoing a message back
/// (`refusal: null`, `annotations`, a string versus a one-part content array) do
/// not change it.
public enum Conversation {
    /// The normalized form of one chat message (OpenAI shape).
    public static func normalize(_ message: JSONValue) -> JSONValue {
        var out: [String: JSONValue] = [:]
        out["role"] = .string(message["role"]?.stringValue ?? "user")
        if let content = message["content"], !content.isNull {
            if let text = content.plainText {
                if !text.isEmpty { out["content"] = .string(text) }
            } else {
                out["content"] = content  // images, audio: compared as sent
            }
        }
        if let calls = message["tool_calls"]?.arrayValue, !calls.isEmpty {
            out["tool_calls"] = .array(calls.map(normalizeToolCall))
        }
        for key in ["tool_call_id", "name"] {
            if let value = message[key]?.stringValue { out[key] = .string(value) }
        }
        return .object(out)
    }

    static func normalizeToolCall(_ call: JSONValue) -> JSONValue {
        var out: [String: JSONValue] = [:]
        if let id = call["id"]?.stringValue { out["id"] = .string(id) }
        out["name"] = .string(call["function"]?["name"]?.stringValue ?? "")
        out["arguments"] = .string(call["function"]?["arguments"]?.stringValue ?? "")
        return .object(out)
    }

    /// The assistant message a client sends back in its next turn for this call's answer.
    public static func reply(output: String?, toolCalls: JSONValue?) -> JSONValue? {
        let hasText = !(output ?? "").isEmpty
        let calls = toolCalls?.arrayValue ?? []
        guard hasText || !calls.isEmpty else { return nil }
        var message: [String: JSONValue] = ["role": .string("assistant")]
        if hasText { message["content"] = .string(output!) }
        if !calls.isEmpty { message["tool_calls"] = .array(calls) }
        return normalize(.object(message))
    }
}
