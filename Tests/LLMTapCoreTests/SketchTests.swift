import Foundation
import LLMTapCore
import Testing

struct SketchTests {
    /// Exact nearest-rank quantile.
    static func exact(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))]
    }

    /// Values spread over six orders of magnitude, as latencies and token rates are.
    static func values(_ n: Int, seed: UInt64) -> [Double] {
        var state = seed
        return (0..<n).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let unit = Double(state >> 11) / Double(1 << 53)
            return pow(10, unit * 6 - 3)  // 1 ms … 1000 s
        }
    }

    @Test(arguments: [1, 2, 10, 999, 20_000])
    func quantilesAreWithinOnePercent(count: Int) {
        let values = Self.values(count, seed: UInt64(count))
        var sketch = Sketch()
        for v in values { sketch.add(v) }
        #expect(sketch.count == count)
        for p in [0.0, 0.01, 0.5, 0.9, 0.99, 1.0] {
            let exact = Self.exact(values, p)
            let estimate = sketch.quantile(p)!
            #expect(abs(estimate - exact) <= exact * Sketch.relativeAccuracy * 1.0001, "p\(p): \(estimate) vs \(exact)")
        }
    }

    @Test func mergedAndSubtractedSketchesEqualTheSketchOfTheirValues() {
        let a = Self.values(500, seed: 1)
        let b = Self.values(700, seed: 2) + [0, -1, 1e-12]  // zero and below share a bucket
        var sa = Sketch()
        var sb = Sketch()
        var all = Sketch()
        for v in a { sa.add(v); all.add(v) }
        for v in b { sb.add(v); all.add(v) }
        var merged = sa
        merged.merge(sb)
        #expect(merged == all)
        #expect(merged.quantile(0) == 0)
        merged.subtract(sb)
        #expect(merged == sa)
        merged.subtract(sa)
        #expect(merged.count == 0 && merged.quantile(0.5) == nil)
    }

    @Test func encodingRoundTripsAndRefusesGarbage() {
        var sketch = Sketch()
        for v in Self.values(3000, seed: 9) + [0, .infinity] { sketch.add(v) }
        sketch.add(.nan)  // not a value: not counted
        #expect(sketch.count == 3002)
        let bytes = sketch.encoded
        #expect(Sketch(encoded: bytes) == sketch)
        #expect(bytes.count < 3000)  // a few bytes per occupied bucket, not per value
        #expect(Sketch(encoded: Sketch().encoded) == Sketch())
        #expect(Sketch(encoded: []) == nil)
        #expect(Sketch(encoded: [2]) == nil)  // an unknown version
        #expect(Sketch(encoded: Array(bytes.dropLast())) == nil)  // cut short
        #expect(Sketch(encoded: [1, 0x80]) == nil)
        #expect(Sketch(encoded: [1, 2, 0]) == nil)  // a bucket of no values
        // Buckets out of order or repeated (llmtap writes them in order) read as the same
        // buckets: 5 once, then 3 once and twice → 3 three times, 5 once.
        let unordered = Sketch(encoded: [1, 10, 1, 3, 1, 0, 2])
        #expect(unordered?.count == 4)
        #expect(unordered?.encoded == [1, 6, 3, 4, 1])
    }
}
