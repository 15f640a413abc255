import Foundation
import GRDB
import LLMTapCore
import LLMTapStore
import Testing

/// The audit chain catches any change to a stored call made outside llmtap, and survives
/// what llmtap itself does: retention, repricing, replayed spools.
struct ChainTests {
    static func records() -> [CallRecord] {
        (0..<40).map { n in
            var r = n % 2 == 0 ? chatRecord(turns: ["question \(n)"], reply: "answer \(n)") : sampleRecord(n)
            r.createdAt = 1_733_000_000 + Double(n)
            return r
        }
    }

    /// A fresh database holding `records`, and a plain SQLite connection to tamper with it.
    func make(_ records: [CallRecord] = records()) async throws -> (TestDirectory, Store, DatabaseQueue) {
        let directory = try TestDirectory()
        let store = try await write(records, to: directory)
        return (directory, store, try DatabaseQueue(path: directory.databasePath))
    }

    @Test func anUntouchedDatabaseVerifies() async throws {
        let records = Self.records()
        let (directory, store, _) = try await make(records)
        defer { directory.remove() }
        let report = try store.verifyChain()
        #expect(report.verified == 40 && report.broken == nil && report.unchained == 0)
        #expect(report.head?.count == 64)
        try await store.insert(records)  // a spool replayed twice: nothing added, chain intact
        #expect(try store.verifyChain() == report)
    }

    @Test(arguments: [
        "UPDATE calls SET output = 'edited' WHERE rowid = 7",
        "UPDATE calls SET input_tokens = input_tokens + 1 WHERE rowid = 7",
        "UPDATE payloads SET request = zeroblob(8) WHERE call_rowid = 7",
        "DELETE FROM calls WHERE rowid = 6",
        "UPDATE calls SET chain_hash = NULL WHERE rowid = 7",
        "UPDATE calls SET session_id = 'other' WHERE rowid = 7",
    ])
    func plainSQLEditsAreCaught(edit: String) async throws {
        let (directory, store, db) = try await make()
        defer { directory.remove() }
        try await db.write { try $0.execute(sql: edit) }
        let report = try store.verifyChain()
        let broken = try #require(report.broken, "not caught: \(edit)")
        let expectedID = try await db.read { try String.fetchOne($0, sql: "SELECT id FROM calls WHERE rowid = 7") }
        #expect(broken.id == expectedID, "\(edit)")
        #expect(report.verified == (edit.hasPrefix("DELETE") ? 5 : 6))
    }

    @Test func retentionAndRepricingKeepTheChain() async throws {
        let (directory, store, db) = try await make()
        defer { directory.remove() }
        #expect(try await store.prune(before: 1_733_000_000 + 15, batchSize: 4) == 15)
        try await store.reprice(with: PricingTable(version: "t", providers: [:]))  // every cost becomes unknown
        var report = try store.verifyChain()
        #expect(report.broken == nil && report.verified == 25)
        #expect(report.checkpoint?.lastRowID == 15 && report.checkpoint?.signatureValid == true)
        // A checkpoint is signed: moving it forward to hide deleted calls is caught.
        try await db.write { try $0.execute(sql: "UPDATE chain_checkpoints SET last_rowid = 20 WHERE id = (SELECT max(id) FROM chain_checkpoints)") }
        report = try store.verifyChain()
        #expect(report.broken?.reason.contains("signature") == true)
    }

    @Test func payloadRetentionKeepsFactsAndTheChainAndReturnsSpace() async throws {
        var records = Self.records()
        for index in records.indices {  // bodies worth reclaiming: random bytes do not compress
            records[index].requestBody = (0..<20_000).map { _ in UInt8.random(in: 0...255) }
        }
        let (directory, store, db) = try await make(records)
        defer { directory.remove() }
        let size = { try await db.read { db in try Int.fetchOne(db, sql: "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()") ?? 0 } }
        let before = try await size()
        #expect(try await store.dropPayloads(before: 1_733_000_000 + 30, batchSize: 7) == 30)
        #expect(try await store.dropPayloads(before: 1_733_000_000 + 30) == 0)  // already dropped
        let old = try #require(try store.call(id: records[3].id))
        #expect(old.requestBody.isEmpty && old.output == records[3].output && old.usage == records[3].usage)
        #expect(try store.call(id: records[35].id)?.requestBody == records[35].requestBody)
        let report = try store.verifyChain()
        #expect(report.broken == nil && report.verified == 40)
        #expect(try await db.read { try Int.fetchOne($0, sql: "PRAGMA auto_vacuum") } == 2)  // incremental
        #expect(try await size() < before - 30 * 15_000, "the dropped bodies' pages went back to the file system")
        // The digest a dropped payload keeps is part of the chain.
        let tampered = records[3].id
        try await db.write { try $0.execute(sql: "UPDATE payloads SET digest = zeroblob(32) WHERE call_rowid = (SELECT rowid FROM calls WHERE id = ?)", arguments: [tampered]) }
        #expect(try store.verifyChain().broken?.id == records[3].id)
    }
}
