/// Token counts of one call, as the provider reported them or as llmtap estimated them.
public struct Usage: Sendable, Hashable, Codable {
    public var inputTokens: Int64?
    public var outputTokens: Int64?
    public var totalTokens: Int64?
    /// Input tokens served from the provider's prompt cache (a part of `inputTokens`).
    public var cachedInputTokens: Int64?
    /// Output tokens spent on hidden reasoning (a part of `outputTokens`).
    public var reasoningTokens: Int64?
    public var source: Source

    public enum Source: String, Sendable, Codable {
        /// Counted by the provider and read from its response.
        case upstream
        /// Counted by llmtap from the text (see `TokenEstimator`).
        case estimated
    }

    public init(
        inputTokens: Int64? = nil,
        outputTokens: Int64? = nil,
        totalTokens: Int64? = nil,
        cachedInputTokens: Int64? = nil,
        reasoningTokens: Int64? = nil,
        source: Source = .upstream
    ) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.totalTokens = totalTokens ?? {
            guard let i = inputTokens, let o = outputTokens else { return nil }
            return i + o
        }()
        self.cachedInputTokens = cachedInputTokens
        self.reasoningTokens = reasoningTokens
        self.source = source
    }
}

/// The documented heuristic used when a provider reports no usage at all:
/// one token per four UTF-8 bytes of text, rounded up, and at least one token
/// for any non-empty text. It is close for English prose with GPT-style
/// tokenizers and is always marked `estimated`, never presented as exact.
public enum TokenEstimator {
    public static func estimate(_ text: String) -> Int64 {
        let bytes = text.utf8.count
        return bytes == 0 ? 0 : Int64((bytes + 3) / 4)
    }
}
