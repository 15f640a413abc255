import Foundation

/// Prices of one model, in nano-USD per million tokens (converted once from the
/// dollars-per-million figures of the pricing file).
public struct ModelPrice: Sendable, Hashable {
    public var input: NanoUSD
    /// Price of input tokens read from the provider's prompt cache; `input` when the provider has none.
    public var cachedInput: NanoUSD
    /// Price of input tokens written to the prompt cache (Anthropic); `input` when not listed.
    public var cacheWrite: NanoUSD
    public var output: NanoUSD

    public init(input: NanoUSD, cachedInput: NanoUSD? = nil, cacheWrite: NanoUSD? = nil, output: NanoUSD) {
        self.input = input
        self.cachedInput = cachedInput ?? input
        self.cacheWrite = cacheWrite ?? input
        self.output = output
    }

    /// The cost of a call. `inputTokens` includes the cache reads and writes, each priced apart.
    public func cost(of usage: Usage) -> NanoUSD? {
        guard let inputTokens = usage.inputTokens, let outputTokens = usage.outputTokens else { return nil }
        let cached = min(usage.cachedInputTokens ?? 0, inputTokens)
        let written = min(usage.cacheWriteInputTokens ?? 0, inputTokens - cached)
        return NanoUSD.cost(tokens: inputTokens - cached - written, pricePerMillion: input)
            + NanoUSD.cost(tokens: cached, pricePerMillion: cachedInput)
            + NanoUSD.cost(tokens: written, pricePerMillion: cacheWrite)
            + NanoUSD.cost(tokens: outputTokens, pricePerMillion: output)
    }
}

/// The dated table of model prices: the bundled `pricing.json`, optionally
/// merged with a user's file (`--pricing FILE`; the user's entries win).
///
/// ```swift
/// let table = try PricingTable.bundled()
/// table.cost(provider: "openai", model: "gpt-4o-mini", usage: usage) // NanoUSD? — nil when unpriced
/// ```
public struct PricingTable: Sendable {
    /// The table's date (or the override file's), stored with every priced call.
    public var version: String
    public var providers: [String: [String: ModelPrice]] {
        didSet { anyProvider = Self.firstPrices(providers) }
    }
    /// Each model's price under the first provider, by name, that lists it: `price`'s last
    /// resort, looked up for every call of a model no provider prices under the call's own
    /// (a local model: it sorted the provider names for each such call, ~0.8 % of the proxy's samples).
    private var anyProvider: [String: ModelPrice]

    public init(version: String, providers: [String: [String: ModelPrice]]) {
        self.version = version
        self.providers = providers
        anyProvider = Self.firstPrices(providers)
    }

    private static func firstPrices(_ providers: [String: [String: ModelPrice]]) -> [String: ModelPrice] {
        var first: [String: ModelPrice] = [:]
        for provider in providers.keys.sorted() {
            first.merge(providers[provider]!) { earlier, _ in earlier }
        }
        return first
    }

    /// The price of `model` at `provider`: an exact name first, then the name without a
    /// date suffix (`gpt-4o-2024-08-06` → `gpt-4o`); then the same model under any provider,
    /// for OpenAI-compatible upstreams that serve a known model under their own name.
    public func price(provider: String, model: String) -> ModelPrice? {
        let undated = Self.strippingDateSuffix(model)
        let own = providers[provider]
        return own?[model] ?? own?[undated] ?? anyProvider[model] ?? anyProvider[undated]
    }

    public func cost(provider: String, model: String?, usage: Usage?) -> NanoUSD? {
        guard let model, let usage, let price = price(provider: provider, model: model) else { return nil }
        return price.cost(of: usage)
    }

    /// Removes a trailing `-YYYY-MM-DD` or `-YYYYMMDD` snapshot date.
    static func strippingDateSuffix(_ model: String) -> String {
        let bytes = Array(model.utf8)
        func isDigits(_ range: Range<Int>) -> Bool {
            range.allSatisfy { bytes[$0] >= UInt8(ascii: "0") && bytes[$0] <= UInt8(ascii: "9") }
        }
        let n = bytes.count
        let dash = UInt8(ascii: "-")
        if n > 11, bytes[n - 11] == dash, bytes[n - 6] == dash, bytes[n - 3] == dash,
            isDigits(n - 10..<n - 6), isDigits(n - 5..<n - 3), isDigits(n - 2..<n)
        {
            return String(decoding: bytes[..<(n - 11)], as: UTF8.self)
        }
        if n > 9, bytes[n - 9] == dash, isDigits(n - 8..<n) {
            return String(decoding: bytes[..<(n - 9)], as: UTF8.self)
        }
        return model
    }
}

extension PricingTable {
    private struct File: Decodable {
        var version: String
        var providers: [String: [String: Entry]]
        struct Entry: Decodable {
            var input: Double
            var cached_input: Double?
            var cache_write: Double?
            var output: Double
        }
    }

    /// Reads a pricing file: `{"version": "...", "providers": {"openai": {"gpt-4o": {"input": 2.5, "cached_input": 1.25, "output": 10}}}}`,
    /// prices in USD per million tokens.
    public static func decode(_ data: Data) throws -> PricingTable {
        let file = try JSONDecoder().decode(File.self, from: data)
        return PricingTable(
            version: file.version,
            providers: file.providers.mapValues { models in
                models.mapValues { e in
                    ModelPrice(
                        input: NanoUSD(dollars: e.input),
                        cachedInput: e.cached_input.map { NanoUSD(dollars: $0) },
                        cacheWrite: e.cache_write.map { NanoUSD(dollars: $0) },
                        output: NanoUSD(dollars: e.output)
                    )
                }
            }
        )
    }

    /// The table shipped with llmtap.
    public static func bundled() throws -> PricingTable {
        guard let url = Bundle.module.url(forResource: "pricing", withExtension: "json") else {
            throw CocoaError(.fileNoSuchFile)
        }
        return try decode(Data(contentsOf: url))
    }

    /// This table with `overrides` merged in model by model; the version names both.
    public func merging(_ overrides: PricingTable) -> PricingTable {
        var merged = providers
        for (provider, models) in overrides.providers {
            merged[provider, default: [:]].merge(models) { _, new in new }
        }
        return PricingTable(version: "\(version)+\(overrides.version)", providers: merged)
    }
}
