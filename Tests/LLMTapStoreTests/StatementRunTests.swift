import Foundation
import GRDB
import Testing

@testable import LLMTapStore

/// `Statement.run`, the writer's way around `StatementArguments`: the same values stored,
/// the same errors thrown, and the statement still usable after one.
struct StatementRunTests {
    @Test func bindsEveryKindOfValueInOrder() throws {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, i, r, s, b, n)")
            let insert = try db.cachedStatement(sql: "INSERT INTO t (i, r, s, b, n) VALUES (?, ?, ?, ?, ?)")
            let text = "héllo \u{1F600} \"quoted\""
            let blob = Data([0, 1, 2, 255, 0])
            try insert.run([Int64(-7).databaseValue, 2.5.databaseValue, text.databaseValue, blob.databaseValue, .null])
            try insert.run([Int64.max.databaseValue, (-0.0).databaseValue, "".databaseValue, Data().databaseValue, .null])
            #expect(db.changesCount == 1)
            #expect(db.lastInsertedRowID == 2)
            let rows = try Row.fetchAll(db, sql: "SELECT i, r, s, b, n, typeof(b) AS kind FROM t ORDER BY id")
            #expect(rows[0]["i"] == -7 as Int64)
            #expect(rows[0]["r"] == 2.5)
            #expect(rows[0]["s"] == text)
            #expect(rows[0]["b"] == blob)
            #expect((rows[0]["n"] as DatabaseValue).isNull)
            #expect(rows[1]["i"] == Int64.max)
            #expect(rows[1]["s"] == "")
            #expect(rows[1]["kind"] == "blob")
            // A slice binds from its first element (the payload row drops its first value).
            let values: [DatabaseValue] = ["skipped".databaseValue, Int64(1).databaseValue, .null, .null, .null, .null]
            try insert.run(values.dropFirst())
            #expect(try Int64.fetchOne(db, sql: "SELECT i FROM t WHERE id = 3") == 1)
        }
    }

    @Test func throwsWhatSQLiteSaysAndStaysUsable() throws {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT NOT NULL UNIQUE)")
            let insert = try db.cachedStatement(sql: "INSERT INTO t (s) VALUES (?)")
            try insert.run(["a".databaseValue])
            let duplicate = #expect(throws: DatabaseError.self) { try insert.run(["a".databaseValue]) }
            #expect(duplicate?.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE)
            #expect(duplicate?.message?.contains("UNIQUE") == true)
            let missing = #expect(throws: DatabaseError.self) { try insert.run([]) }
            #expect(missing?.resultCode == .SQLITE_MISUSE)
            try insert.run(["b".databaseValue])  // reset after the failure
            #expect(try String.fetchAll(db, sql: "SELECT s FROM t ORDER BY id") == ["a", "b"])
        }
    }
}
