import Foundation
import LLMTapCore
import Testing

struct PricingTests {
    @Test func bundledTableIsDatedAndPricesKnownModels() throws {
        let table = try PricingTable.bundled()
        #expect(table.version.range(of: #"^\d{4}-\d{2}-\d{2}$"#, options: .regularExpression) != nil)
        let usage = Usage(inputTokens: 1_000_000, outputTokens: 1_000_000)
        // gpt-4o-mini: $0.15 in + $0.60 out per million
        #expect(table.cost(provider: "openai", model: "gpt-4o-mini", usage: usage) == NanoUSD(dollars: 0.75))
    }

    @Test func cachedTokensArePricedApart() throws {
        let table = try PricingTable.bundled()
        let usage = Usage(inputTokens: 2048, outputTokens: 8, cachedInputTokens: 1024)
        // 1024 × 0.15 + 1024 × 0.075 + 8 × 0.60, per million, in nano-USD
        let expected = NanoUSD(153_600 + 76_800 + 4_800)
        #expect(table.cost(provider: "openai", model: "gpt-4o-mini-2024-07-18", usage: usage) == expected)
    }

    @Test func unknownModelOrMissingUsageIsNilNotZero() throws {
        let table = try PricingTable.bundled()
        #expect(table.cost(provider: "ollama", model: "llama3.2", usage: Usage(inputTokens: 5, outputTokens: 5)) == nil)
        #expect(table.cost(provider: "openai", model: "gpt-4o", usage: nil) == nil)
        #expect(table.cost(provider: "openai", model: "gpt-4o", usage: Usage(inputTokens: 5)) == nil)
    }

    @Test func overridesMergeModelByModel() throws {
        let overrides = try PricingTable.decode(
            Data(#"{"version":"local-1","providers":{"ollama":{"llama3.2":{"input":0,"output":0}},"openai":{"gpt-4o":{"input":1,"output":2}}}}"#.utf8))
        let table = try PricingTable.bundled().merging(overrides)
        #expect(table.cost(provider: "ollama", model: "llama3.2", usage: Usage(inputTokens: 5, outputTokens: 5)) == NanoUSD(0))
        #expect(table.price(provider: "openai", model: "gpt-4o")?.output == NanoUSD(dollars: 2))
        #expect(table.price(provider: "openai", model: "gpt-4o-mini") != nil)
        #expect(table.version.hasSuffix("+local-1"))
    }

    /// The call's provider first (the exact name, then without its date); then the model under
    /// any provider, the first by name — an OpenAI-compatible upstream serving a known model.
    @Test func aModelUnknownToItsProviderTakesTheFirstProviderByNamesPrice() {
        func price(_ output: Int64) -> ModelPrice { ModelPrice(input: NanoUSD(1), output: NanoUSD(output)) }
        var table = PricingTable(
            version: "t",
            providers: [
                "zeta": ["m": price(1), "n-2024-05-13": price(2)], "alpha": ["m": price(3), "n": price(4)],
                "own": ["n": price(5)],
            ])
        #expect(table.price(provider: "local", model: "m")?.output == NanoUSD(3))
        #expect(table.price(provider: "zeta", model: "m")?.output == NanoUSD(1))
        #expect(table.price(provider: "local", model: "m-2024-05-13")?.output == NanoUSD(3))
        // Its own undated price before another provider's exact one.
        #expect(table.price(provider: "own", model: "n-2024-05-13")?.output == NanoUSD(5))
        #expect(table.price(provider: "local", model: "n-2024-05-13")?.output == NanoUSD(2))
        #expect(table.price(provider: "local", model: "unpriced") == nil)
        // The table changed in place prices by what it holds now.
        table.providers["aardvark"] = ["m": price(6)]
        #expect(table.price(provider: "local", model: "m")?.output == NanoUSD(6))
        table.providers["aardvark"] = nil
        #expect(table.price(provider: "local", model: "m")?.output == NanoUSD(3))
    }

    @Test func nanoDollarRounding() {
        #expect(NanoUSD.cost(tokens: 1, pricePerMillion: NanoUSD(dollars: 0.15)) == NanoUSD(150))
        #expect(NanoUSD.cost(tokens: 3, pricePerMillion: NanoUSD(dollars: 0.0375)) == NanoUSD(113))
        #expect(NanoUSD.cost(tokens: Int64.max / 2, pricePerMillion: NanoUSD(dollars: 100)) > NanoUSD(0))
    }

    @Test func callIDsSortByTime() {
        let early = CallID.make(date: Date(timeIntervalSince1970: 1_700_000_000))
        let late = CallID.make(date: Date(timeIntervalSince1970: 1_700_000_001))
        #expect(early < late)
        #expect(early.count == 36)
        // UUIDv7 layout: 48 bits of milliseconds first, version 7, RFC variant, lowercase hex.
        let chars = Array(early)
        // (Ids are monotonic across the process: one made earlier by a test beside this one may
        // carry a later time, so the prefix is at least the date's, not equal to it.)
        let milliseconds = UInt64(String(chars[0..<8]) + String(chars[9..<13]), radix: 16)
        #expect(milliseconds.map { $0 >= 1_700_000_000_000 } == true)
        #expect([chars[8], chars[13], chars[18], chars[23]] == ["-", "-", "-", "-"])
        #expect(chars[14] == "7")
        #expect("89ab".contains(chars[19]))
        #expect(early.allSatisfy { "0123456789abcdef-".contains($0) })
        let burst = (0..<5000).map { _ in CallID.make() }  // many in one millisecond
        #expect(burst == burst.sorted())
        #expect(Set(burst).count == burst.count)
    }

    @Test func estimatorIsFourBytesPerToken() {
        #expect(TokenEstimator.estimate("") == 0)
        #expect(TokenEstimator.estimate("abc") == 1)
        #expect(TokenEstimator.estimate("abcdefghi") == 3)
    }
}

struct ModelNameTests {
    @Test(arguments: [
        ("gpt-4o-2024-08-06", "gpt-4o"), ("claude-3-5-haiku-20241022", "claude-3-5-haiku"), ("gpt-4o", "gpt-4o"),
        ("o1-2024-12-17", "o1"), ("model-2024-8-06", "model-2024-8-06"), ("x-1234567", "x-1234567"),
    ])
    func priceLookupIgnoresSnapshotDates(model: String, base: String) throws {
        let table = PricingTable(version: "t", providers: ["p": [base: ModelPrice(input: NanoUSD(1), output: NanoUSD(1))]])
        #expect(table.price(provider: "p", model: model) != nil)
        if model != base {
            #expect(PricingTable(version: "t", providers: ["p": ["other": ModelPrice(input: NanoUSD(1), output: NanoUSD(1))]]).price(provider: "p", model: model) == nil)
        }
    }
}
