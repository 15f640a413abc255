import Foundation
import GRDB
import Synchronization

/// Finds a content-addressed row (`messages`, `fragments`) by its hash without writing a
/// hash-ordered index entry for every row stored.
///
/// A `UNIQUE` index on a hash takes every insert at a random place: once it outgrows a write
/// batch, each new message or fragment dirties a page of its own, and the log writes that
/// page whole (synthetic calls, `llmtap-bench`: 4.8 KB written per call at 30 k calls,
/// 24 KB at 300 k, for ~950 bytes stored). So the keys come in two parts, like a two-level
/// LSM tree:
/// - rows up to `content_keys.merged_through` have their key in `message_keys` or `fragment_keys` (hash → id);
/// - newer rows, appended to the table in id order, are found through a map in memory, read
///   back from the table itself after a restart (`WHERE id > merged_through`: a range of the
///   table, no index needed).
/// When the map holds `mergeAt` keys, the writer moves them into that table in hash order
/// within its transaction: one pass over the key index for tens of thousands of rows, instead
/// of a page for each.
///
/// The writer is the only one to use it, inside its write transactions (`sync` first in each).
public final class ContentKeys: Sendable {
    /// 3/4 of a power of two: a full table of Swift's dictionary, reserved at the start.
    public static let defaultMergeAt = 49_152

    /// `messages` or `fragments`: the table, and its name in `content_keys`.
    let table: String
    /// Its merged keys: `message_keys`, `fragment_keys`.
    let keys: String
    let mergeAt: Int

    private struct State {
        var recent: [Hash16: Int64]
        var mergedThrough: Int64 = 0
        /// The newest row id the map knows of.
        var lastID: Int64 = 0
        /// False until read from the database, and after a write that failed (its rows rolled
        /// back; the map may hold them).
        var loaded = false
    }

    private let state: Mutex<State>

    init(table: String, keys: String, mergeAt: Int = defaultMergeAt) {
        self.table = table
        self.keys = keys
        self.mergeAt = max(mergeAt, 1)
        var recent: [Hash16: Int64] = [:]
        // Its whole table at the start, like the writer's caches: memory does not step up as it fills.
        recent.reserveCapacity(self.mergeAt)
        state = Mutex(State(recent: recent))
    }

    /// Reads the keys above the merge point back from the database when the map may not match
    /// it: first use, a failed write, or rows written by another process (`llmtap import`
    /// while llmtap serves). Two lookups when it does.
    func sync(_ db: Database) throws {
        let mergedThrough =
            try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT merged_through FROM content_keys WHERE name = ?"), arguments: [table]) ?? 0
        let lastID = try Int64.fetchOne(db.cachedStatement(sql: "SELECT max(id) FROM \(table)")) ?? 0
        let current = state.withLock { $0.loaded && $0.mergedThrough == mergedThrough && $0.lastID == lastID }
        if current { return }
        var recent: [Hash16: Int64] = [:]
        recent.reserveCapacity(mergeAt)
        let rows = try Row.fetchCursor(
            db, sql: "SELECT hash, id FROM \(table) WHERE id > ? ORDER BY id", arguments: [mergedThrough])
        while let row = try rows.next() {
            guard let hash = Hash16(bytes: row[0] as Data) else { continue }
            recent[hash] = row[1]
        }
        state.withLock { $0 = State(recent: recent, mergedThrough: mergedThrough, lastID: lastID, loaded: true) }
    }

    /// The id of the row with this hash, if one is stored.
    func find(_ hash: Hash16, db: Database) throws -> Int64? {
        if let id = state.withLock({ $0.recent[hash] }) { return id }
        return try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT id FROM \(keys) WHERE hash = ?"), arguments: [hash.data])
    }

    /// A row the writer just appended.
    func added(_ hash: Hash16, id: Int64) {
        state.withLock { s in
            s.recent[hash] = id
            s.lastID = max(s.lastID, id)
        }
    }

    /// Moves the keys held in memory into `the keys table` once there are `mergeAt` of them.
    func mergeIfDue(_ db: Database) throws {
        let (due, mergedThrough) = state.withLock { ($0.recent.count >= mergeAt, $0.mergedThrough) }
        guard due else { return }
        let through = try Int64.fetchOne(db, sql: "SELECT max(id) FROM \(table)") ?? mergedThrough
        // OR IGNORE: a hash stored twice (by two processes) keeps its first key.
        try db.execute(
            sql: "INSERT OR IGNORE INTO \(keys) (hash, id) SELECT hash, id FROM \(table) WHERE id > ? ORDER BY hash",
            arguments: [mergedThrough])
        try db.execute(
            sql: "UPDATE content_keys SET merged_through = ? WHERE name = ?", arguments: [through, table])
        state.withLock { s in
            s.recent.removeAll(keepingCapacity: true)
            s.mergedThrough = through
            s.lastID = max(s.lastID, through)
        }
    }

    /// The write failed and rolled back: read the keys again before the next one.
    func invalidate() {
        state.withLock { $0.loaded = false }
    }

    /// Keys held in memory (tests, the bench).
    var recentCount: Int { state.withLock { $0.recent.count } }
}
