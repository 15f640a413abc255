/// The form in which messages are compared across calls, so that a conversation
/// re-sent turn after turn is recognised: the role, the text, and tool calls by
/// id, name and arguments. Fields clients add or drop when echoing a message back
/// (`refusal: null`, `annotations`, a string versus a one-part content array) do
/// not change it.
public enum Conversation {
    /// A message's role in its normalized form: a message without one is a user turn.
    public static func role(of message: JSONValue) -> String {
        message["role"]?.stringValue ?? "user"
    }

    /// The normalized form of one chat message (OpenAI shape).
    public static func normalize(_ message: JSONValue) -> JSONValue {
        var out: [String: JSONValue] = [:]
        out["role"] = .string(role(of: message))
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

    /// `normalize(message).canonicalBytes`, written straight from the message: the recorder
    /// hashes every message of every context it is sent (a 20-turn session sends each one up to
    /// 20 times), and building the normalized dictionary, then sorting its keys, was ~30 % of
    /// preparing such a call. The keys below are in canonical (UTF-8 byte) order; `normalize`
    /// stays the definition, and a test holds the two to the same bytes.
    public static func normalizedCanonicalBytes(_ message: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        var first = true
        func key(_ name: StaticString) {
            out.append(first ? UInt8(ascii: "{") : UInt8(ascii: ","))
            first = false
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        }
        if let content = message["content"], !content.isNull {
            if let text = content.plainText {
                if !text.isEmpty {
                    key("content")
                    JSONValue.writeString(text, into: &out)
                }
            } else {
                key("content")
                content.write(into: &out)
            }
        }
        if let name = message["name"]?.stringValue {
            key("name")
            JSONValue.writeString(name, into: &out)
        }
        key("role")
        JSONValue.writeString(role(of: message), into: &out)
        if let id = message["tool_call_id"]?.stringValue {
            key("tool_call_id")
            JSONValue.writeString(id, into: &out)
        }
        if let calls = message["tool_calls"]?.arrayValue, !calls.isEmpty {
            key("tool_calls")
            out.append(UInt8(ascii: "["))
            for (n, call) in calls.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: #"{"arguments":"#.utf8)
                JSONValue.writeString(call["function"]?["arguments"]?.stringValue ?? "", into: &out)
                if let id = call["id"]?.stringValue {
                    out.append(contentsOf: #","id":"#.utf8)
                    JSONValue.writeString(id, into: &out)
                }
                out.append(contentsOf: #","name":"#.utf8)
                JSONValue.writeString(call["function"]?["name"]?.stringValue ?? "", into: &out)
                out.append(UInt8(ascii: "}"))
            }
            out.append(UInt8(ascii: "]"))
        }
        out.append(UInt8(ascii: "}"))
        return out
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
