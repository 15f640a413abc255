import Foundation
import GRDB
import LLMTapCore

/// The SQLite database: opened in WAL mode and migrated on open. Only the
/// `Recorder` writes calls through it; readers (the query API, the CLI) share it.
public final class Store: Sendable {
    public let path: String
    let pool: DatabasePool
    let nodeCache = NodeCache()

    /// Opens (creating if needed) and migrates the database at `path`.
    /// - Parameter busyTimeout: how long a write waits for another connection's lock
    ///   before failing (the Recorder then spools the batch rather than wait longer).
    public init(path: String, busyTimeout: TimeInterval = 0.25) throws {
        self.path = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        configuration.prepareDatabase { db in
            // Space freed by retention goes back to the file system in small steps. Set on the
            // writer before WAL mode; takes effect only in a new, empty database (an existing one
            // keeps its free pages for reuse).
            if !db.configuration.readonly { try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL") }
            // WAL with synchronous=NORMAL: a committed transaction survives a crash or kill -9 of
            // llmtap; only a power loss can take the last few back (see README, "Durability").
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // Index lookups (threading, ids) hit pages all over the file: keep 64 MiB of them
            // in cache and read the rest through a memory map instead of a syscall per page.
            try db.execute(sql: "PRAGMA cache_size = -65536")
            try db.execute(sql: "PRAGMA mmap_size = 268435456")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 16384")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        try Migrations.migrator.migrate(pool)
    }

    /// The schema as `schema.sql` holds it: every CREATE statement in creation order.
    public func schemaDump() throws -> String {
        try pool.read { db in try Self.schemaDump(db) }
    }

    static func schemaDump(_ db: Database) throws -> String {
        let statements = try String.fetchAll(
            db,
            sql: """
                SELECT sql FROM sqlite_schema
                WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'grdb_%'
                  AND name NOT LIKE 'calls_fts_%'
                ORDER BY rowid
                """
        )
        return statements.map { $0 + ";\n" }.joined(separator: "\n")
    }

    /// Runs `PRAGMA integrity_check`; `"ok"` when the file is sound.
    public func integrityCheck() throws -> String {
        try pool.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "no answer" }
    }

    /// Closes the connections (tests reopen the file to look at it afresh).
    public func close() throws {
        try pool.close()
    }
}
