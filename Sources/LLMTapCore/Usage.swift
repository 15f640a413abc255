/// Token counts of one call, as the provider reported them or as llmtap estimated them.
public struct Usage: Sendable, Hashable, Codable {
    public var inputTokens: Int64?
    public var outputTokens: Int64?
    public var totalTokens: Int64?
    /// Input tokens served from the provider's prompt cache (a part of `inputTokens`).
    public var cachedInputTokens: Int64?
    /// Input tokens written to the provider's prompt cache (Anthropic; a part of `inputTokens`).
    public var cacheWriteInputTokens: Int64?
    /// Output tokens spent on hidden reasoning (a part of `outputTokens`).
    public var reasoningTokens: Int64?
    public var source: Source

    public enum Source: String, Sendable, Codable {
        /// Counted by the provider and read from its response.
        case upstream
        /// Counted by llmtap from the text (see `TokenEstimator`).
        case estimated
    }

    /// The counts with those no provider can mean (negative) made unknown: a garbled usage
    /// object must not subtract from a bill.
    public var plausible: Usage {
        var usage = self
        let counts: [WritableKeyPath<Usage, Int64?>] = [
            \.inputTokens, \.outputTokens, \.totalTokens, \.cachedInputTokens, \.cacheWriteInputTokens, \.reasoningTokens,
        ]
        for count in counts where (usage[keyPath: count] ?? 0) < 0 { usage[keyPath: count] = nil }
        return usage
    }

    public init(
        inputTokens: Int64? = nil,
        outputTokens: Int64? = nil,
        totalTokens: Int64? = nil,
        cachedInputTokens: Int64? = nil,
        cacheWriteInputTokens: Int64? = nil,
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
        self.cacheWriteInputTokens = cacheWriteInputTokens
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

/// Checks on a call's usage, stored with it so an auditor can find the calls whose
/// counts or cost deserve a second look (`/api/requests?check=usage_missing`).
public struct UsageChecks: OptionSet, Sendable, Hashable, Codable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// The provider answered but reported no usage.
    public static let usageMissing = UsageChecks(rawValue: 1)
    /// The counts are llmtap's estimate (see `TokenEstimator`).
    public static let usageEstimated = UsageChecks(rawValue: 2)
    /// Usage came on more than one chunk (the last one counts; never summed).
    public static let usageRepeated = UsageChecks(rawValue: 4)
    /// Zero output tokens reported for a non-empty output.
    public static let zeroOutputTokens = UsageChecks(rawValue: 8)
    /// No cost: the model is not in the pricing table, or usage is unknown.
    public static let costUnknown = UsageChecks(rawValue: 16)

    public static let names: [(String, UsageChecks)] = [
        ("usage_missing", .usageMissing), ("usage_estimated", .usageEstimated), ("usage_repeated", .usageRepeated),
        ("zero_output_tokens", .zeroOutputTokens), ("cost_unknown", .costUnknown),
    ]

    public var names: [String] { Self.names.filter { contains($0.1) }.map(\.0) }

    public init?(name: String) {
        guard let check = Self.names.first(where: { $0.0 == name })?.1 else { return nil }
        self = check
    }

    /// The checks that apply to a finished call.
    public static func of(_ record: CallRecord, providerReportedUsage: Bool, answered: Bool) -> UsageChecks {
        var checks: UsageChecks = []
        if answered && !providerReportedUsage { checks.insert(.usageMissing) }
        if record.usage?.source == .estimated { checks.insert(.usageEstimated) }
        if record.usageRepeated { checks.insert(.usageRepeated) }
        if record.usage?.outputTokens == 0, !(record.output ?? "").isEmpty { checks.insert(.zeroOutputTokens) }
        if record.costNanoUSD == nil, answered { checks.insert(.costUnknown) }
        return checks
    }
}
