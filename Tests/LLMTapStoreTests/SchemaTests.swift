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

    /// The `calls` table's CHECK constraints hold: a well-formed row goes in, one with an outcome
    /// or a session source outside their lists does not (written as comparisons since `v15`).
    @Test func sqliteEnforcesInvariants() throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        _ = try Store(path: directory.databasePath)
        let db = try DatabaseQueue(path: directory.databasePath)
        func insert(_ id: String, source: String?, outcome: String) throws {
            try db.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO calls (id, created_at, session_id, session_source, provider, endpoint, api_format,
                          is_stream, outcome, latency_s)
                        VALUES (?, 0, 's', ?, 'openai', '/v1', 'generic', 0, ?, 0)
                        """,
                    arguments: [id, source, outcome])
            }
        }
        for (n, outcome) in ["ok", "upstream_error", "unreachable", "client_cancelled", "timeout"].enumerated() {
            try insert("ok-\(n)", source: ["header", "body", "auto", nil, "auto"][n], outcome: outcome)
        }
        #expect(throws: DatabaseError.self) { try insert("x", source: "header", outcome: "fine") }
        #expect(throws: DatabaseError.self) { try insert("y", source: "cookie", outcome: "ok") }
        #expect(throws: DatabaseError.self) { try insert("z", source: "Header", outcome: "OK") }
        #expect(try db.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM calls") } == 5)
    }
}
