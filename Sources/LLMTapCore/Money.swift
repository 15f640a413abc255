/// An amount of US dollars as an integer count of nano-dollars (1e-9 USD),
/// the unit stored in the database: exact to add, no floating-point drift.
public struct NanoUSD: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    public var rawValue: Int64

    public init(_ rawValue: Int64) { self.rawValue = rawValue }

    /// Converts a decimal dollar amount, e.g. a price per million tokens from the pricing table.
    public init(dollars: Double) { self.rawValue = Int64((dollars * 1e9).rounded()) }

    public var dollars: Double { Double(rawValue) / 1e9 }

    public static func < (a: NanoUSD, b: NanoUSD) -> Bool { a.rawValue < b.rawValue }
    public static func + (a: NanoUSD, b: NanoUSD) -> NanoUSD { NanoUSD(a.rawValue + b.rawValue) }

    /// The cost of `tokens` at `pricePerMillion` nano-USD per million tokens, rounded to the nearest nano-USD.
    public static func cost(tokens: Int64, pricePerMillion: NanoUSD) -> NanoUSD {
        let (product, overflow) = tokens.multipliedReportingOverflow(by: pricePerMillion.rawValue)
        if !overflow {
            return NanoUSD((product + 500_000) / 1_000_000)
        }
        let exact = (Double(tokens) * Double(pricePerMillion.rawValue) / 1e6).rounded()
        return NanoUSD(exact >= 9.2e18 ? Int64.max : Int64(exact))
    }

    public var description: String { "$" + String(dollars) }
}
