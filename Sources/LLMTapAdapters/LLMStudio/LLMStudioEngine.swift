import LLMTapCore
import NIOCore

/// LLMstudio's engine call, `POST /api/engine/chat/{provider}` with
/// `{"api_key","model","chat_input","parameters","is_stream","session_id"}`:
/// here llmtap is the client, and this builds the provider request it sends.
public enum LLMStudioEngine {
    /// What the client asked for.
    public struct Call: Sendable, Equatable {
        public var apiKey: String?
        public var model: String
        /// `chat_input` as messages: a string is one user message.
        public var messages: [JSONValue]
        /// The last user turn as text.
        public var chatInput: String?
        public var parameters: [String: JSONValue]
        public var isStream: Bool
        public var sessionID: String?
    }

    /// Why a body is not an engine call; said to the client as a 400.
    public struct InvalidCall: Error, Equatable {
        public var message: String
    }

    /// The chat API a provider speaks, chosen by its name and base URL.
    public enum Family: String, Sendable {
        case openAI = "openai"
        case anthropic
        case ollama

        /// `anthropic` (or a base URL at anthropic.com) speaks Messages; `ollama` (or port
        /// 11434) speaks Ollama's `/api/chat`; every other provider is OpenAI-compatible.
        public init(provider: String, baseURL: String) {
            let name = provider.lowercased()
            let url = baseURL.lowercased()
            if name.contains("anthropic") || url.contains("anthropic.com") {
                self = .anthropic
            } else if name.contains("ollama") || url.contains(":11434") {
                self = .ollama
            } else {
                self = .openAI
            }
        }
    }

    public static func parseCall(_ body: ByteBuffer) throws(InvalidCall) -> Call {
        guard let json = JSONValue.parse(body.readableBytesView), let members = json.objectValue else {
            throw InvalidCall(message: "the engine call must be a JSON object with model and chat_input")
        }
        guard let model = members["model"]?.stringValue, !model.isEmpty else {
            throw InvalidCall(message: "model is required (a string)")
        }
        let messages: [JSONValue]
        switch members["chat_input"] {
        case .string(let text)?:
            messages = [.object(["role": .string("user"), "content": .string(text)])]
        case .array(let list)? where !list.isEmpty && list.allSatisfy({ $0.objectValue != nil }):
            messages = list
        default:
            throw InvalidCall(message: "chat_input is required: a string or a list of messages")
        }
        var parameters: [String: JSONValue] = [:]
        switch members["parameters"] {
        case .object(let given)?: parameters = given
        case nil, .null?: break
        default: throw InvalidCall(message: "parameters must be an object")
        }
        let isStream: Bool
        switch members["is_stream"] {
        case .bool(let flag)?: isStream = flag
        case .string(let text)?: isStream = ["true", "1", "yes"].contains(text.lowercased())
        case .int(let n)?: isStream = n != 0
        default: isStream = false
        }
        return Call(
            apiKey: members["api_key"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }, model: model,
            messages: messages, chatInput: OpenAIChat.lastUserText(.array(messages)), parameters: parameters,
            isStream: isStream, sessionID: members["session_id"]?.stringValue)
    }

    /// The provider request: its path under the provider's base URL, its wire API, its JSON body.
    public static func upstreamRequest(_ call: Call, model: String, family: Family, baseURL: String)
        -> (path: String, api: WireAPI, body: ByteBuffer)
    {
        var body: [String: JSONValue] = [:]
        let path: String
        let api: WireAPI
        switch family {
        case .openAI:
            body = call.parameters
            body["messages"] = .array(call.messages)
            if call.isStream {
                body["stream"] = .bool(true)
                body["stream_options"] = .object(["include_usage": .bool(true)])
            } else {
                body.removeValue(forKey: "stream")
            }
            path = baseURL.hasSuffix("/v1") ? "/chat/completions" : "/v1/chat/completions"
            api = .openAIChat
        case .anthropic:
            // Messages takes the system prompt apart, needs max_tokens, and refuses unknown fields.
            let allowed: Set = [
                "max_tokens", "temperature", "top_p", "top_k", "stop_sequences", "tools", "tool_choice", "metadata",
                "thinking", "system", "service_tier",
            ]
            body = call.parameters.filter { allowed.contains($0.key) }
            if let stop = call.parameters["stop"], body["stop_sequences"] == nil {
                body["stop_sequences"] = stop.stringValue.map { .array([.string($0)]) } ?? stop
            }
            if body["max_tokens"] == nil {
                body["max_tokens"] = call.parameters["max_completion_tokens"] ?? .int(4096)
            }
            var system: [String] = []
            var messages: [JSONValue] = []
            for message in call.messages {
                let role = message["role"]?.stringValue
                if role == "system" || role == "developer" {
                    if let text = message["content"]?.plainText { system.append(text) }
                } else {
                    messages.append(message)
                }
            }
            if !system.isEmpty, body["system"] == nil { body["system"] = .string(system.joined(separator: "\n\n")) }
            body["messages"] = .array(messages)
            if call.isStream { body["stream"] = .bool(true) }
            path = "/v1/messages"
            api = .anthropicMessages
        case .ollama:
            // Ollama takes sampling settings under "options"; OpenAI's max_tokens is num_predict.
            let topLevel: Set = ["format", "keep_alive", "tools", "think", "options"]
            var options = call.parameters["options"]?.objectValue ?? [:]
            for (key, value) in call.parameters where !topLevel.contains(key) && key != "stream" {
                options[key == "max_tokens" || key == "max_completion_tokens" ? "num_predict" : key] = value
            }
            body = call.parameters.filter { topLevel.contains($0.key) && $0.key != "options" }
            if !options.isEmpty { body["options"] = .object(options) }
            body["messages"] = .array(call.messages)
            body["stream"] = .bool(call.isStream)
            path = "/api/chat"
            api = .ollamaChat
        }
        body["model"] = .string(model)
        return (path, api, ByteBuffer(string: JSONValue.object(body).canonicalText))
    }
}
