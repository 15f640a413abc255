import Foundation
import GRDB
import LLMTapCore
import LLMTapStore
import Testing

struct RetentionTests {
    @Test func pruneDeletesOldCallsWithEverythingTheyOwn() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        var old = chatRecord(turns: ["ancient question"], reply: "ancient answer")
        old.createdAt = 1_000
        old.tags = ["team": "archive"]
        let recent = chatRecord(turns: ["recent question"], reply: "recent answer")
        let store = try await write([old, recent], to: directory)

        var search = CallFilter()
        search.text = "ancient"
        #expect(try store.requests(filter: search, limit: 10, cursor: nil).items.count == 1)

        let deleted = try await store.prune(before: 2_000, batchSize: 1)
        #expect(deleted == 1)
        #expect(try store.call(id: old.id) == nil)
        #expect(try store.call(id: recent.id)?.output == "recent answer")
        #expect(try store.requests(filter: search, limit: 10, cursor: nil).items.isEmpty)
        let db = try DatabaseQueue(path: directory.databasePath)
        let oldID = old.id
        let leftovers = try await db.read { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT (SELECT count(*) FROM payloads WHERE call_rowid NOT IN (SELECT rowid FROM calls))
                      + (SELECT count(*) FROM tags WHERE call_id = ?)
                    """,
                arguments: [oldID])
        }
        #expect(leftovers == 0)  // the old call's payload and tag went with it
        #expect(try store.integrityCheck() == "ok")
        let ftsCheck = try await db.write { db in  // FTS5's own consistency check against the calls table
            try db.execute(sql: "INSERT INTO calls_fts (calls_fts) VALUES ('integrity-check')")
            return true
        }
        #expect(ftsCheck)
    }

    @Test(arguments: [("90d", 7_776_000.0), ("12h", 43_200.0), ("30m", 1_800.0), ("45s", 45.0), ("2w", 1_209_600.0)])
    func periods(text: String, seconds: Double) {
        #expect(RetentionPeriod.seconds(text) == seconds)
    }

    @Test func badPeriods() {
        for text in ["", "d", "10", "-5d", "3y", "tend"] { #expect(RetentionPeriod.seconds(text) == nil) }
    }
}

struct RepriceTests {
    @Test func repricingIsDeterministicAndFillsUnknownCosts() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        var priced = sampleRecord(1)  // gpt-4o-mini, 10 in / 1 out, stored cost 1501 (not the table's)
        priced.provider = "openai"
        var local = sampleRecord(2)
        local.provider = "ollama"
        local.model = "llama3.2"
        local.costNanoUSD = nil
        local.usageChecks = [.costUnknown]
        let store = try await write([priced, local], to: directory)

        let bundled = try PricingTable.bundled()
        let first = try await store.reprice(with: bundled)
        #expect(first.calls == 2 && first.changed == 1)
        #expect(try store.call(id: priced.id)?.costNanoUSD == 10 * 150 + 1 * 600)
        #expect(try store.call(id: priced.id)?.pricingVersion == bundled.version)
        #expect(try await store.reprice(with: bundled).changed == 0)  // same table, same costs

        let localPrices = try PricingTable.decode(Data(#"{"version":"local-1","providers":{"ollama":{"llama3.2":{"input":0,"output":0}}}}"#.utf8))
        _ = try await store.reprice(with: bundled.merging(localPrices))
        let repriced = try #require(try store.call(id: local.id))
        #expect(repriced.costNanoUSD == 0)  // priced at 0 by explicit choice, no longer unknown
        #expect(!repriced.usageChecks.contains(.costUnknown))
    }
}
