import LLMTapCore
import NIOCore

/// OpenAI's embeddings API (`POST /v1/embeddings`): `input` is a string, a list of
/// strings or token arrays; the answer is a list of vectors and `usage.prompt_tokens`.
/// The record keeps the inputs as the context (their count is the input count) and
/// no output text: the vectors stay in the raw response payload.
public enum OpenAIEmbeddings {
    public static func parseRequest(_ body: ByteBuffer) -> RequestFacts {
        var facts = RequestFacts()
        guard let json = JSONValue.parse(body.readableBytesView), let members = json.objectValue else { return facts }
        facts.isValidJSON = true
        facts.model = members["model"]?.stringValue
        facts.sessionID = members["session_id"]?.stringValue ?? members["metadata"]?["session_id"]?.stringValue
        switch members["input"] {
        case .string(let text)?:
            facts.context = .array([.string(text)])
            facts.chatInput = text
        case .array(let items)?:
            facts.context = .array(items)
            facts.chatInput = items.last?.stringValue
        default:
            break
        }
        facts.setParameters(members, without: ["input", "model"])
        return facts
    }

    /// How many inputs a request embedded (the context holds them).
    public static func inputCount(_ context: JSONValue?) -> Int? {
        context?.arrayValue?.count
    }

    public static func parseResponse(_ body: ByteBuffer) -> ResponseFacts {
        var facts = ResponseFacts()
        guard let json = JSONValue.parse(body.readableBytesView) else { return facts }
        OpenAIChat.readError(json, into: &facts)
        facts.responseModel = json["model"]?.stringValue
        if let usage = json["usage"], !usage.isNull {
            let input = usage["prompt_tokens"]?.intValue
            facts.usage = Usage(
                inputTokens: input, outputTokens: 0, totalTokens: usage["total_tokens"]?.intValue ?? input,
                source: .upstream)
        }
        facts.completed = facts.errorType == nil && json["data"]?.arrayValue != nil
        return facts
    }
}
