import LLMTapCore

/// What an adapter read from a request body.
public struct RequestFacts: Sendable, Equatable {
    public var model: String?
    /// Every request field but the conversation.
    public var parameters: JSONValue?
    /// The message list (system included) or the prompt.
    public var context: JSONValue?
    /// The last user turn as text.
    public var chatInput: String?
    public var isStream: Bool = false
    /// The body asked for a usage chunk at the end of the stream.
    public var includesUsage: Bool = false
    /// `session_id` or `metadata.session_id` from the body.
    public var sessionID: String?
    /// Whether the body was JSON at all (a malformed body is forwarded and recorded as is).
    public var isValidJSON: Bool = false
    /// Only the body's summary was read (`init(summary:)`): the rest waits for `parseRequest`.
    public var isSummary = false

    public init() {}

    /// What a summary knows — model, stream, usage option — for a call that goes upstream
    /// before its body is parsed.
    public init(summary: RequestSummary) {
        model = summary.model
        isStream = summary.isStream
        includesUsage = summary.includesUsage
        isSummary = true
    }

    /// A message-list context, and the last user turn of it as the chat input.
    mutating func setConversation(_ messages: [JSONValue]) {
        guard !messages.isEmpty else { return }
        context = .array(messages)
        chatInput = OpenAIChat.lastUserText(.array(messages))
    }

    /// The request's members other than the conversation (`keys`) as its parameters.
    mutating func setParameters(_ members: [String: JSONValue], without keys: [String]) {
        var parameters = members
        for key in keys { parameters.removeValue(forKey: key) }
        self.parameters = .object(parameters)
    }
}

/// What an adapter read from a response, streamed or not.
public struct ResponseFacts: Sendable, Equatable {
    /// The text of the first choice.
    public var output: String?
    /// The text of every choice, when there were several (`n` > 1).
    public var outputs: [String]?
    public var toolCalls: JSONValue?
    public var finishReason: String?
    public var responseModel: String?
    public var usage: Usage?
    public var errorType: String?
    public var errorMessage: String?
    /// Monotonic nanosecond times at which chunks carrying content or a tool-call delta arrived.
    public var contentTimes: [UInt64] = []
    /// The stream ended the way the API ends a complete stream (`[DONE]`, a finish reason).
    public var completed: Bool = false
    /// Usage appeared on more than one chunk (never summed: the last one counts).
    public var usageRepeated: Bool = false
    /// What the provider measured itself (Ollama's durations and tokens/s).
    public var serverMetrics: JSONValue?

    public init() {}
}

/// Wall-clock facts derived from content arrival times (see README, "Metrics").
public struct StreamTimings: Sendable, Equatable {
    public var ttftS: Double?
    public var itlS: Double?
    public var itlP95S: Double?
    public var itlMaxS: Double?
    public var tokensPerSecond: Double?

    /// - Parameters:
    ///   - start: when the request was received, in the same monotonic nanoseconds as `contentTimes`.
    public init(start: UInt64, contentTimes: [UInt64], outputTokens: Int64?) {
        guard let first = contentTimes.first, let last = contentTimes.last else { return }
        ttftS = Double(first &- start) / 1e9
        let gaps = zip(contentTimes.dropFirst(), contentTimes).map { Double($0 &- $1) / 1e9 }
        if !gaps.isEmpty {
            itlS = gaps.reduce(0, +) / Double(gaps.count)
            let sorted = gaps.sorted()
            itlP95S = sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.95).rounded(.up)) - 1)]
            itlMaxS = sorted.last
        }
        let span = Double(last &- first) / 1e9
        if let outputTokens, outputTokens > 0, span > 0 {
            tokensPerSecond = Double(outputTokens) / span
        }
    }
}
