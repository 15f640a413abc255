import Foundation
import GRDB
@testable import LLMTapStore
import Testing

struct SchemaTests {
    /// `schema.sql` at the repository root is exactly what the migrations produce.
    @Test func migrationsProduceSchemaSQL() throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let store = try Store(path: directory.databasePath)
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let expected = try String(contentsOf: root.appendingPathComponent("schema.sql"), encoding: .utf8)
        #expect(try store.schemaDump() == expected)
    }

    @Test func reopeningMigratesNothingAndKeepsRows() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let recorder = Recorder(store: try Store(path: directory.databasePath), spool: Spool(path: directory.spoolPath), logger: testLogger)
        recorder.submit(sampleRecord(1))
        try await runUntilWritten(recorder, count: 1)
        let reopened = try Store(path: directory.databasePath)
        #expect(try reopened.callCount() == 1)
        #expect(try reopened.integrityCheck() == "ok")
        #expect(try await reopened.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") } == 8192)
        // The log is checkpointed at 64 MiB beside the writer (`Checkpointer`), not by SQLite in its commits.
        #expect(reopened.checkpointer.thresholdPages == 8192)
        #expect(try await reopened.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") } == 0)
    }

    @Test func sqliteEnforcesInvariants() throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        _ = try Store(path: directory.databasePath)
        let db = try DatabaseQueue(path: directory.databasePath)
        #expect(throws: DatabaseError.self) {
            try db.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO calls (id, created_at, provider, endpoint, api_format, is_stream, outcome, latency_s)
                        VALUES ('x', 0, 'openai', '/v1', 'generic', 0, 'fine', 0)
                        """)
            }
        }
    }
}
