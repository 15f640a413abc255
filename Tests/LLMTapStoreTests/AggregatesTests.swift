import Foundation
import GRDB
import LLMTapCore
@testable import LLMTapStore
import Testing

/// The `sessions`, `cost_hourly` and `stats_hourly` sums must always equal what a scan of
/// the calls gives: after writes, prunes and reprices, and when a database made before them
/// is migrated.
struct AggregatesTests {
    static let base = 1_733_000_000.0

    /// 300 calls over ~22 hours: two providers, several models (one unpriced, one call without
    /// usage), three keys (one absent), sessions of many sizes and calls without one.
    static func records() -> [CallRecord] {
        (0..<300).map { n in
            var r = sampleRecord(n)
            r.createdAt = base + Double(n) * 271.3
            r.provider = n % 3 == 0 ? "anthropic" : "openai"
            r.model = ["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku", "local-llm"][n % 4]
            r.responseModel = n % 5 == 0 ? nil : (r.model ?? "") + "-2024"
            r.keyFingerprint = [nil, "k1", "k2"][n % 3]
            r.sessionID = n % 4 == 3 ? nil : "s\(n % 23)"
            r.sessionSource = r.sessionID == nil ? nil : .header
            r.costNanoUSD = r.model == "local-llm" ? nil : 1000 + Int64(n * 7)
            if n % 31 == 0 { r.usage = nil }
            r.latencyS = 0.05 + Double((n * 37) % 101) * 0.093
            r.ttftS = n % 7 == 0 ? nil : 0.01 + Double((n * 13) % 29) * 0.021
            r.itlS = r.ttftS.map { $0 / 9 }
            r.tokensPerSecond = n % 7 == 0 ? nil : 20 + Double((n * 11) % 53) * 3.7
            r.tags = [:]
            return r
        }
    }

    static func filters() -> [CallFilter] {
        var list = [CallFilter()]
        for (from, to) in [(base + 1234.5, base + 50_000.25), (base + 3600, base + 7200), (nil, base + 40_000), (base + 9000, nil),
            (base + 100, base + 2000), (records()[5].createdAt, base + 30_000)]  // the last starts at a call's own time
        {
            var f = CallFilter()
            f.from = from
            f.to = to
            list.append(f)
        }
        var provider = CallFilter()
        provider.provider = "anthropic"
        provider.from = base + 5000.5
        var key = CallFilter()
        key.apiKey = "k2"
        list += [provider, key]
        return list
    }

    func expectSumsMatchTheCalls(_ store: Store) throws {
        for filter in Self.filters() {
            for grouping in [CostGrouping.model, .provider, .day, .hour, .apiKey] {
                let summed = try store.cost(groupBy: grouping, filter: filter)
                let scanned = try store.scannedCost(groupBy: grouping, filter: filter)
                #expect(summed == scanned, "\(grouping) from \(filter.from ?? 0) to \(filter.to ?? 0)")
            }
        }
        for filter in Self.filters() {
            // The same split from the hourly sums and, with a filter they cannot answer, from the calls.
            var scanning = filter
            scanning.outcome = "ok"
            for (grouping, series) in [(CostGrouping.day, CostGrouping.model), (.hour, .apiKey), (.provider, .day)] {
                let summed = try store.costSeries(groupBy: grouping, series: series, filter: filter)
                #expect(summed == (try store.costSeries(groupBy: grouping, series: series, filter: scanning)))
                let totals = try store.cost(groupBy: grouping, filter: filter).groups
                #expect(summed.sorted { ($0.key ?? "") < ($1.key ?? "") }.map { [$0.key, "\($0.costNanoUSD)", "\($0.requests)"] }
                    == totals.sorted { ($0.key ?? "") < ($1.key ?? "") }.map { [$0.key, "\($0.costNanoUSD)", "\($0.requests)"] })
                for group in summed {
                    #expect(group.series.map(\.costNanoUSD).reduce(0, +) == group.costNanoUSD)
                }
            }
        }
        for filter in Self.filters() {
            // Percentiles from the hourly sketches (and the partial hours' calls) equal those of a scan.
            let summed = try store.stats(filter: filter)
            #expect(summed == (try store.stats(filter: filter, rollup: false)), "stats from \(filter.from ?? 0) to \(filter.to ?? 0)")
            #expect(summed.map(\.requests).reduce(0, +) == (try store.cost(groupBy: .model, filter: filter).total.requests))
        }
        #expect(throws: QueryError.unsupportedSeries) {
            try store.costSeries(groupBy: .day, series: .tag("team"), filter: CallFilter())
        }
        var everything = CallFilter()
        everything.from = 0  // not empty: the scan over the calls
        var fast: [SessionSummary] = []
        var scanned: [SessionSummary] = []
        var cursor: String?
        repeat {
            let page = try store.sessions(filter: CallFilter(), limit: 7, cursor: cursor)
            fast += page.items
            cursor = page.nextCursor
        } while cursor != nil
        repeat {
            let page = try store.sessions(filter: everything, limit: 500, cursor: cursor)
            scanned += page.items
            cursor = page.nextCursor
        } while cursor != nil
        #expect(fast == scanned)
        #expect(!fast.isEmpty)
        for summary in fast.prefix(3) { #expect(try store.session(id: summary.id)?.summary == summary) }
    }

    @Test func sumsFollowWritesPrunesAndReprices() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let store = try await write(Self.records(), to: directory)
        try expectSumsMatchTheCalls(store)
        let total = try store.cost(groupBy: .model, filter: CallFilter()).total
        #expect(total.requests == 300)
        #expect(total.costNanoUSD == Self.records().compactMap(\.costNanoUSD).reduce(0, +))

        try await store.prune(before: Self.base + 20_000.7, batchSize: 13)
        try expectSumsMatchTheCalls(store)

        let table = PricingTable(
            version: "test", providers: ["openai": ["local-llm": ModelPrice(input: NanoUSD(dollars: 5), output: NanoUSD(dollars: 7))]])
        let (_, changed) = try await store.reprice(with: table)
        #expect(changed > 0)
        try expectSumsMatchTheCalls(store)

        // The stats of whole hours come from the rollup, not the calls: a latency edited behind
        // llmtap's back shows in a scan only.
        let before = try store.stats(filter: CallFilter())
        try await store.pool.write { db in try db.execute(sql: "UPDATE calls SET latency_s = 999") }
        #expect(try store.stats(filter: CallFilter()) == before)
        #expect(try store.stats(filter: CallFilter(), rollup: false).allSatisfy { $0.latency?.p50 ?? 0 > 980 })
    }

    /// `llmtap import` takes any time a JSONL line holds: one beyond an hour's range is summed
    /// (in a clamped hour), not a crash; a filter that far out is answered by a scan.
    @Test func timesBeyondAnyHourAreSummedNotACrash() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        var far = sampleRecord(1)
        far.createdAt = 1e300
        var past = sampleRecord(2)
        past.createdAt = -1e300
        let store = try await write([far, past], to: directory)
        #expect(try store.cost(groupBy: .model, filter: CallFilter()).total.requests == 2)
        #expect(try store.stats(filter: CallFilter()).map(\.requests).reduce(0, +) == 2)
        var filter = CallFilter()
        filter.from = 2e180
        #expect(try store.stats(filter: filter).map(\.requests).reduce(0, +) == 1)
        #expect(try store.cost(groupBy: .model, filter: filter).total.requests == 1)
    }

    @Test func aDatabaseMadeBeforeTheSumsGetsThemOnMigration() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        _ = try await write(Self.records(), to: directory)
        // Take the database back to before the sums existed, then reopen it.
        let queue = try DatabaseQueue(path: directory.databasePath)
        try await queue.write { db in
            for trigger in ["calls_hourly_insert", "calls_hourly_delete", "calls_hourly_reprice", "calls_session_insert",
                "calls_session_delete", "calls_session_reprice"]
            {
                try db.execute(sql: "DROP TRIGGER IF EXISTS \(trigger)")
            }
            try db.execute(sql: "DROP TABLE sessions; DROP TABLE cost_hourly; DROP TABLE stats_hourly")
            try db.execute(
                sql: """
                    DELETE FROM grdb_migrations
                    WHERE identifier IN ('v3-sessions-and-hourly-cost', 'v5-batch-sums', 'v7-stats-sketches')
                    """)
        }
        try queue.close()
        let store = try Store(path: directory.databasePath)
        #expect(try store.appliedMigrations().contains("v3-sessions-and-hourly-cost"))
        try expectSumsMatchTheCalls(store)
    }
}
