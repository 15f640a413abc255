import Foundation
import GRDB
import LLMTapCore
@testable import LLMTapStore
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

    /// A link's bytes are a format: databases written by earlier builds must still verify.
    /// These were computed by the first chain's code, which fed SHA-256 value by value.
    @Test func linksAndDigestsHashTheSameBytesAsEver() {
        let values: [DatabaseValue] = Store.callColumns.indices.map { i in
            switch i % 5 {
            case 0: .null
            case 1: Int64(i * 1_000_003 - 40_000_000).databaseValue
            case 2: (Double(i) / 7).databaseValue
            case 3: "column \(i) é \u{1F600}".databaseValue
            default: Data((0..<i).map { UInt8(truncatingIfNeeded: $0 * 37) }).databaseValue
            }
        }
        let payload: [DatabaseValue] = [
            "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".databaseValue, "zlib".databaseValue,
            Data(repeating: 0x5A, count: 3_000).databaseValue, Int64(9_000).databaseValue, Data([1, 2, 3]).databaseValue,
            Int64(3).databaseValue, .null, Int64(3).databaseValue, .null,
        ]
        let fragment = Hash16(of: Array("fragment".utf8))
        let digest = AuditChain.payloadDigest(payload, fragments: [fragment, fragment])
        let link = AuditChain.link(
            previous: AuditChain.genesis, values: values, payloadDigest: digest,
            textSources: [Hash16(of: Array("message".utf8))])
        let unpaid = AuditChain.link(previous: link, values: values, payloadDigest: nil)
        #expect(digest.map { String(format: "%02x", $0) }.joined() == "afb144f2e607b149bb965d82d561de9aee87466bd43b7eacbb15358457049013")
        #expect(link.map { String(format: "%02x", $0) }.joined() == "33c47477e7393dcb81227f1fa40ce72de8c2ee49114f7d77ac4ad3e308c18619")
        #expect(unpaid.map { String(format: "%02x", $0) }.joined() == "648c66f9398122e64094896c61d2a84ced9b8f77ba7462815c7bbf0e05725173")
    }
}
