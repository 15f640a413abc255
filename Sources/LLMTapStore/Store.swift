import Foundation
import GRDB
import LLMTapCore
import Synchronization

/// The SQLite database: opened in WAL mode and migrated on open. Only the
/// `Recorder` writes calls through it; readers (the query API, the CLI) share it.
public final class Store: Sendable {
    public let path: String
    /// The open database; replaced by `reopen()` when the file was deleted or refused writes.
    var pool: DatabasePool { opened.withLock { $0.pool } }
    private let opened: Mutex<(pool: DatabasePool, file: FileIdentity?)>
    private let configuration: Configuration
    let nodeCache = NodeCache()
    /// Each conversation's last context and request, hashed (`prepare`).
    let contextMemo = ContextMemo()
    /// Hashes of request fragments known to be stored (a hint: the write checks).
    let fragmentCache: FragmentCache
    /// How the writer finds a stored message or fragment by its hash.
    let messageKeys: ContentKeys
    let fragmentKeys: ContentKeys
    /// Copies the write-ahead log into the file off the writer's commits.
    let checkpointer: Checkpointer

    /// Opens (creating if needed) and migrates the database at `path`.
    /// - Parameters:
    ///   - busyTimeout: how long a write waits for another connection's lock
    ///     before failing (the Recorder then spools the batch rather than wait longer).
    ///   - fullSync: fsync the WAL at every commit (`--durability sync`), so a committed
    ///     call survives a power loss too, not only a crash of llmtap.
    ///   - fragmentSlack: how many calls a request fragment's `last_rowid` may lag behind
    ///     before the writer rewrites it (see `FragmentCache`).
    ///   - keysMergedAt: how many new messages (and fragments) the writer finds through its
    ///     memory before it writes their keys (`ContentKeys`).
    ///   - keysMergedPerWrite: how many of those keys one write transaction moves.
    ///   - checkpointAt: bytes of write-ahead log that start a checkpoint (`Checkpointer`).
    public init(
        path: String, busyTimeout: TimeInterval = 0.25, fullSync: Bool = false, fragmentSlack: Int64 = 100_000,
        keysMergedAt: Int = ContentKeys.defaultMergeAt, keysMergedPerWrite: Int = ContentKeys.defaultMergeSlice,
        checkpointAt: Int = 64 << 20
    ) throws {
        self.path = path
        let checkpointer = Checkpointer(path: path, logBytes: checkpointAt)
        self.checkpointer = checkpointer
        fragmentCache = FragmentCache(slack: fragmentSlack)
        messageKeys = ContentKeys(
            table: "messages", keys: "message_keys", mergeAt: keysMergedAt, mergeSlice: keysMergedPerWrite)
        fragmentKeys = ContentKeys(
            table: "fragments", keys: "fragment_keys", mergeAt: keysMergedAt, mergeSlice: keysMergedPerWrite)
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        configuration.prepareDatabase { db in
            // Space freed by retention goes back to the file system in small steps. Set on the
            // writer before WAL mode; takes effect only in a new, empty database (an existing one
            // keeps its free pages for reuse). So do 8 KiB pages: rows of a few hundred bytes
            // leave less unused at the end of a page (20-turn sessions: -1.4 % of the file;
            // 16 KiB gained only 0.3 % more).
            if !db.configuration.readonly { try db.execute(sql: "PRAGMA page_size = 8192; PRAGMA auto_vacuum = INCREMENTAL") }
            // WAL with synchronous=NORMAL: a committed transaction survives a crash or kill -9 of
            // llmtap; only a power loss can take the last few back (see README, "Durability").
            try db.execute(sql: fullSync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
            // Index lookups (threading, ids) hit pages all over the file: keep 4 MiB of them in
            // cache and read the rest through a 64 MiB memory map instead of a syscall per page.
            // Both count in llmtap's resident memory. 16, 64 and 256 MiB of cache measured no
            // faster on ingest (llmtap-bench, synthetic and session corpus), and a cache that takes
            // a few hundred thousand calls to fill made the soak's memory climb long after warm-up.
            try db.execute(sql: "PRAGMA cache_size = -4096")
            try db.execute(sql: "PRAGMA mmap_size = 67108864")
            // The log is copied into the file beside the writer, not in its commits.
            if !db.configuration.readonly { try checkpointer.install(on: db) }
        }
        self.configuration = configuration
        let pool = try Self.open(path, configuration)
        opened = Mutex((pool, FileIdentity(path: path)))
    }

    private static func open(_ path: String, _ configuration: Configuration) throws -> DatabasePool {
        let pool = try DatabasePool(path: path, configuration: configuration)
        try Migrations.migrator.migrate(pool)
        return pool
    }

    /// The file at `path` is not the one open any more: deleted or replaced while llmtap runs.
    /// Writes would go to a file no one can read again.
    public var fileWasReplaced: Bool {
        opened.withLock { $0.file } != FileIdentity(path: path)
    }

    /// Opens the file at `path` afresh (creating and migrating it if it is gone). Readers
    /// already running finish on the previous connections.
    public func reopen() throws {
        let pool = try Self.open(path, configuration)
        opened.withLock { $0 = (pool, FileIdentity(path: path)) }
        checkpointer.reset()
        nodeCache.removeAll()
        fragmentCache.removeAll()
        messageKeys.invalidate(fileChanged: true)
        fragmentKeys.invalidate(fileChanged: true)
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

    /// Fragments recently written, with their row id and the `last_rowid` last stored for each
    /// (bounded), so their bytes need not be compressed again, their id not looked up, and
    /// `last_rowid` is rewritten only when it falls `slack` calls behind. Retention keeps that
    /// slack in hand (`dropFragments`).
    final class FragmentCache: Sendable {
        struct Entry {
            var id: Int64
            var lastRowID: Int64
        }

        private let stored = Mutex(NodeCache.reserved([Hash16: Entry]()))
        static let limit = NodeCache.limit
        let slack: Int64

        init(slack: Int64) { self.slack = slack }

        func contains(_ hash: Hash16) -> Bool { stored.withLock { $0[hash] != nil } }

        func entry(_ hash: Hash16) -> Entry? { stored.withLock { $0[hash] } }

        func stored(_ hash: Hash16, id: Int64, at rowID: Int64) {
            stored.withLock { map in
                if map.count >= Self.limit { map.removeAll(keepingCapacity: true) }
                map[hash] = Entry(id: id, lastRowID: rowID)
            }
        }

        func removeAll() { stored.withLock { $0.removeAll(keepingCapacity: true) } }
    }

    /// Device and inode of a file, to notice it was deleted or replaced.
    struct FileIdentity: Equatable {
        let device: UInt64
        let inode: UInt64

        init?(path: String) {
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
        }
    }

    /// Closes the connections (tests reopen the file to look at it afresh).
    public func close() throws {
        try checkpointer.close()
        try pool.close()
    }
}
