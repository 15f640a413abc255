import Foundation
import GRDB
import GRDBSQLite
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
/// When the map holds `mergeAt` keys, the writer moves them into that table in hash order:
/// one pass over the key index for tens of thousands of rows, instead of a page for each.
/// The pass is spread over the next writes, `mergeSlice` keys each, so that no transaction
/// carries all of it (one 49,152-key merge at 1 M calls took ~0.45 s; calls under
/// `--durability sync` waited for it). Each slice is the next stretch of hash order, so the
/// slices together touch each page of the key index once, as the whole pass did; each takes
/// its keys out of the map, which is reserved for one slice more than `mergeAt` and so never
/// grows while keys arrive during a merge.
///
/// A new row's hash is in neither part, and looking for it in the keys table read a page at
/// random (`pread`: 1.7 a call at 300 k calls): a Bloom filter of that table's keys, built by
/// reading the table in slices over the first writes, answers "not there" from memory.
///
/// The writer is the only one to use it, inside its write transactions (`sync` first in each).
public final class ContentKeys: Sendable {
    /// Five slices: with one more, 49,152 = 3/4 of 2^16, a full table of Swift's dictionary.
    public static let defaultMergeAt = 40_960
    public static let defaultMergeSlice = 8_192

    /// `messages` or `fragments`: the table, and its name in `content_keys`.
    let table: String
    /// Its merged keys: `message_keys`, `fragment_keys`.
    let keys: String
    let mergeAt: Int
    /// Keys a write moves once a merge has begun.
    let mergeSlice: Int

    /// A merge under way: the map's keys up to row `through`, in hash order, written up to `next`.
    /// It lives in memory only; if it is dropped (a failed write, a restart, rows of another
    /// process), its keys stay in the map and the next merge writes them again (`OR IGNORE`).
    private struct Merge {
        var keys: [(hash: Hash16, id: Int64)]
        var through: Int64
        var next = 0
    }

    private struct State {
        var recent: [Hash16: Int64]
        var mergedThrough: Int64 = 0
        /// The newest row id the map knows of.
        var lastID: Int64 = 0
        /// False until read from the database, and after a write that failed (its rows rolled
        /// back; the map may hold them).
        var loaded = false
        /// Nil: to be read from the table afresh.
        var filter: KeyFilter?
        var merge: Merge?
    }

    private let state: Mutex<State>

    /// Keys read into the filter per write transaction while it is filled (~2 MB of keys table).
    let filterSlice: Int

    init(table: String, keys: String, mergeAt: Int = defaultMergeAt, mergeSlice: Int = defaultMergeSlice, filterSlice: Int = 65_536) {
        self.table = table
        self.keys = keys
        self.mergeAt = max(mergeAt, 1)
        self.mergeSlice = max(mergeSlice, 1)
        self.filterSlice = max(filterSlice, 1)
        var recent: [Hash16: Int64] = [:]
        // Its whole table at the start, like the writer's caches: memory does not step up as it fills.
        recent.reserveCapacity(self.mergeAt + self.mergeSlice)
        state = Mutex(State(recent: recent))
    }

    /// Reads the keys above the merge point back from the database when the map may not match
    /// it: first use, a failed write, or rows written by another process (`llmtap import`
    /// while llmtap serves). When nothing changed it costs two lookups.
    func sync(_ db: Database) throws {
        let mergedThrough =
            try db.cachedStatement(sql: "SELECT merged_through FROM content_keys WHERE name = ?")
            .firstInt64([table.databaseValue]) ?? 0
        let lastID = try db.cachedStatement(sql: "SELECT max(id) FROM \(table)").firstInt64([]) ?? 0
        let current = state.withLock { $0.loaded && $0.mergedThrough == mergedThrough && $0.lastID == lastID }
        if !current {
            var recent: [Hash16: Int64] = [:]
            recent.reserveCapacity(mergeAt + mergeSlice)
            try db.makeStatement(sql: "SELECT hash, id FROM \(table) WHERE id > ? ORDER BY id")
                .forEachRow([mergedThrough.databaseValue]) { row in
                    if let hash = Hash16(row, column: 0) { recent[hash] = sqlite3_column_int64(row, 1) }
                }
            state.withLock { s in
                (s.recent, s.mergedThrough, s.lastID, s.loaded, s.merge) = (recent, mergedThrough, lastID, true, nil)
            }
        }
        try fillFilter(db, mergedThrough: mergedThrough)
    }

    /// Brings the filter up to the keys table: started over on first use, for another file, or
    /// when the table outgrew it (then read from the table a slice per write until complete);
    /// keys another process merged since are read from the rows they name (an id range).
    /// A merge that rolled back left keys the table lacks: a few needless lookups, no harm.
    private func fillFilter(_ db: Database, mergedThrough: Int64) throws {
        let (cursor, missed): (Data?, Int64?) = state.withLock { s in
            if s.filter == nil || mergedThrough > s.filter!.capacity {
                s.filter = KeyFilter(capacity: mergedThrough * 2)
                s.filter!.through = mergedThrough
            }
            let missed = s.filter!.through < mergedThrough ? s.filter!.through : nil
            s.filter!.through = mergedThrough
            return (s.filter!.complete ? nil : s.filter!.cursor ?? Data(), missed)
        }
        if let missed {
            let hashes = try Self.hashes(
                db.makeStatement(sql: "SELECT hash FROM \(table) WHERE id > ? AND id <= ?"),
                [missed.databaseValue, mergedThrough.databaseValue])
            state.withLock { s in for hash in hashes { s.filter!.insert(hash) } }
        }
        guard let cursor else { return }
        let slice = try Self.hashes(
            db.cachedStatement(sql: "SELECT hash FROM \(keys) WHERE hash > ? ORDER BY hash LIMIT ?"),
            [cursor.databaseValue, filterSlice.databaseValue])
        state.withLock { s in
            for hash in slice { s.filter!.insert(hash) }
            s.filter!.cursor = slice.last?.data ?? cursor
            s.filter!.complete = slice.count < filterSlice
        }
    }

    /// The 16-byte hashes a statement's first column returns.
    private static func hashes(_ statement: Statement, _ values: [DatabaseValue]) throws -> [Hash16] {
        var hashes: [Hash16] = []
        try statement.forEachRow(values) { row in
            if let hash = Hash16(row, column: 0) { hashes.append(hash) }
        }
        return hashes
    }

    /// The id of the row with this hash, if one is stored.
    func find(_ hash: Hash16, db: Database) throws -> Int64? {
        let (recent, absent) = state.withLock { s in
            (s.recent[hash], s.filter.map { $0.complete && !$0.mayContain(hash) } ?? false)
        }
        if let recent { return recent }
        if absent { return nil }
        return try db.cachedStatement(sql: "SELECT id FROM \(keys) WHERE hash = ?").firstInt64([hash.data.databaseValue])
    }

    /// A row the writer just appended.
    func added(_ hash: Hash16, id: Int64) {
        state.withLock { s in
            s.recent[hash] = id
            s.lastID = max(s.lastID, id)
        }
    }

    /// Moves the keys held in memory into the keys table once there are `mergeAt` of them:
    /// the next `mergeSlice` of them in hash order now, the rest in the writes that follow.
    /// A slice's keys leave the map (the filter and the keys table find them); should the
    /// write roll back, the map is read again from the rows past the merge point, which moves
    /// only with the last slice.
    /// - Returns: whether this write moved keys.
    @discardableResult
    func mergeIfDue(_ db: Database) throws -> Bool {
        let slice: ArraySlice<(hash: Hash16, id: Int64)>? = state.withLock { s in
            if s.merge == nil, s.recent.count >= mergeAt {
                // Sorted by (high, low) as unsigned words: the order of the stored 16-byte blobs.
                let keys = s.recent.map { (hash: $0.key, id: $0.value) }.sorted {
                    ($0.hash.high, $0.hash.low) < ($1.hash.high, $1.hash.low)
                }
                s.merge = Merge(keys: keys, through: s.lastID)
            }
            guard let merge = s.merge else { return nil }
            let end = min(merge.keys.count, merge.next + mergeSlice)
            s.merge!.next = end
            return merge.keys[merge.next..<end]
        }
        guard let slice else { return false }
        // OR IGNORE: a hash stored twice (by two processes) keeps its first key.
        let insert = try db.cachedStatement(sql: "INSERT OR IGNORE INTO \(keys) (hash, id) VALUES (?, ?)")
        for key in slice { try insert.run([key.hash.data.databaseValue, key.id.databaseValue]) }
        let through: Int64? = state.withLock { s in
            for key in slice {
                s.filter?.insert(key.hash)
                if s.recent[key.hash] == key.id { s.recent[key.hash] = nil }
            }
            return s.merge!.next == s.merge!.keys.count ? s.merge!.through : nil
        }
        guard let through else { return true }
        // The last slice: the rows up to `through` are found through the keys table from now on.
        try db.execute(sql: "UPDATE content_keys SET merged_through = ? WHERE name = ?", arguments: [through, table])
        state.withLock { s in
            s.filter?.through = through
            s.mergedThrough = through
            s.merge = nil
        }
        return true
    }

    /// The write failed and rolled back (the map may hold its rows), or the database was
    /// opened afresh (`fileChanged`: the filter was another file's): read them again before
    /// the next write.
    func invalidate(fileChanged: Bool = false) {
        state.withLock { s in
            s.loaded = false
            s.merge = nil
            if fileChanged { s.filter = nil }
        }
    }

    /// Keys held in memory (tests, the bench).
    var recentCount: Int { state.withLock { $0.recent.count } }
    /// Whether the filter holds every key of the table (tests).
    var filterComplete: Bool { state.withLock { $0.filter?.complete ?? false } }
}

/// A Bloom filter of a keys table's hashes: "not there" for sure, "maybe" otherwise. The keys
/// are SHA-256 bits already, so its probes are taken from them (double hashing) without
/// hashing again. 8 – 16 bits a key (~2 % false "maybe" at worst) from 128 KiB up, at most
/// 32 MiB (~30 M keys before it answers "maybe" more often).
struct KeyFilter {
    private var words: [UInt64]
    private let mask: UInt64
    /// The keys it was sized for.
    let capacity: Int64
    /// The `merged_through` whose keys it holds (once complete).
    var through: Int64 = 0
    /// The last hash read from the table, while it is being filled.
    var cursor: Data?
    var complete = false

    static let probes: UInt64 = 6

    init(capacity: Int64) {
        var bits: Int64 = 1 << 20
        while bits < capacity * 8, bits < 1 << 28 { bits <<= 1 }
        words = [UInt64](repeating: 0, count: Int(bits / 64))
        mask = UInt64(bits - 1)
        self.capacity = bits >= 1 << 28 ? .max : bits / 8
    }

    mutating func insert(_ key: Hash16) {
        for n in 0..<Self.probes {
            let bit = (key.high &+ n &* key.low) & mask
            words[Int(bit >> 6)] |= 1 << (bit & 63)
        }
    }

    func mayContain(_ key: Hash16) -> Bool {
        for n in 0..<Self.probes {
            let bit = (key.high &+ n &* key.low) & mask
            if words[Int(bit >> 6)] & (1 << (bit & 63)) == 0 { return false }
        }
        return true
    }
}
