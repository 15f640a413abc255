import LLMTapCore
import NIOCore

/// The OpenAI chat-completions API (`POST /v1/chat/completions`), as spoken by
/// OpenAI and every OpenAI-compatible server (vLLM, llama.cpp, Ollama's `/v1`, Groq…).
/// The legacy completions API (`/v1/completions`: `prompt` in, `choices[].text` out) is read
/// by the same code.
public enum OpenAIChat {
    /// Model, parameters, context and chat input of a request body. Tolerant:
    /// a body that is not JSON gives empty facts (it is forwarded as is anyway).
    public static func parseRequest(_ body: ByteBuffer) -> RequestFacts {
        var facts = RequestFacts()
        guard let json = JSONValue.parse(body.readableBytesView), let members = json.objectValue else {
            return facts
        }
        facts.isValidJSON = true
        facts.model = members["model"]?.stringValue
        facts.isStream = members["stream"]?.boolValue ?? false
        facts.includesUsage = members["stream_options"]?["include_usage"]?.boolValue ?? false
        facts.sessionID = members["session_id"]?.stringValue ?? members["metadata"]?["session_id"]?.stringValue
        if let messages = members["messages"] {
            facts.context = messages
            facts.chatInput = lastUserText(messages)
        } else if let prompt = members["prompt"] {  // legacy completions: a string or a list of them
            facts.context = prompt
            facts.chatInput = prompt.stringValue ?? prompt.arrayValue?.last?.stringValue
        }
        facts.setParameters(members, without: ["messages", "model", "prompt"])
        return facts
    }

    static func lastUserText(_ messages: JSONValue) -> String? {
        guard let list = messages.arrayValue else { return nil }
        for message in list.reversed() where message["role"]?.stringValue == "user" {
            return message["content"]?.plainText
        }
        return nil
    }

    /// The request body with `"stream_options":{"include_usage":true}` added, for a
    /// streaming call that did not ask for usage — or `nil` when nothing is to be
    /// added (not streaming, already asked, or `stream_options` set by the client,
    /// whose choice is respected). The rest of the body keeps its exact bytes.
    public static func injectingUsage(into body: ByteBuffer, summary: RequestSummary) -> ByteBuffer? {
        guard summary.isObject, summary.isStream, !summary.hasStreamOptions else { return nil }
        let bytes = body.readableBytesView
        guard let brace = bytes.firstIndex(of: UInt8(ascii: "{")) else { return nil }
        let afterBrace = bytes.index(after: brace)
        let isEmptyObject = bytes[afterBrace...].first(where: { !isJSONWhitespace($0) }) == UInt8(ascii: "}")
        var out = ByteBuffer()
        out.reserveCapacity(body.readableBytes + 48)
        out.writeBytes(bytes[..<afterBrace])
        out.writeString(#""stream_options":{"include_usage":true}"#)
        if !isEmptyObject { out.writeString(",") }
        out.writeBytes(bytes[afterBrace...])
        return out
    }

    static func isJSONWhitespace(_ b: UInt8) -> Bool {
        b == UInt8(ascii: " ") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r") || b == UInt8(ascii: "\t")
    }
}
