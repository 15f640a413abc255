import Foundation
import GRDB
import GRDBSQLite
import LLMTapCore
import Synchronization

/// Conversation threading, after Simon Willison's `llm`: every distinct message
/// is stored once (by hash), and a context is a path of nodes from a root, so a
/// conversation re-sent turn after turn costs one new node per new message.
///
/// A call without a session id joins the session of an earlier call when its
/// context starts with that call's context followed by that call's reply (the
/// deepest such call wins). Rules that keep conversations apart:
/// - only calls made with the same provider key (fingerprint) are candidates;
/// - when several sessions end with the same reply (two users asked the same
///   first question and got the same answer), the one whose latest call is that
///   reply — the session still waiting for its next turn — is preferred, then the
///   most recent; a first turn alone never joins anything.
/// A call that continues nothing starts a session named by its own id.
extension Store {
    /// Message ids by hash and node ids by (parent, message), kept by the writer;
    /// ids are never reused while llmtap runs. Bounded.
    final class NodeCache: Sendable {
        struct NodeKey: Hashable {
            var parent: Int64
            var message: Int64
        }

        private let state = Mutex((messages: reserved([Hash16: Int64]()), nodes: reserved([NodeKey: Int64]())))
        /// Entries kept before a map starts over: 3/4 of a power of two, a full table of
        /// Swift's dictionary. Each map is given its whole table at the start, so memory stays
        /// where it is once the table is touched (growing a table doubled it: a step of several
        /// MiB hundreds of thousands of calls into a soak).
        static let limit = 98_304

        static func reserved<Key, Value>(_ map: [Key: Value]) -> [Key: Value] {
            var map = map
            map.reserveCapacity(limit)
            return map
        }

        func message(_ hash: Hash16) -> Int64? { state.withLock { $0.messages[hash] } }

        /// Forgets every id (the database they point into was replaced).
        func removeAll() {
            state.withLock { state in
                state.messages.removeAll(keepingCapacity: true)
                state.nodes.removeAll(keepingCapacity: true)
            }
        }
        func node(_ key: NodeKey) -> Int64? { state.withLock { $0.nodes[key] } }

        func set(message hash: Hash16, _ id: Int64) {
            state.withLock { state in
                if state.messages.count >= Self.limit { state.messages.removeAll(keepingCapacity: true) }
                state.messages[hash] = id
            }
        }

        func set(node key: NodeKey, _ id: Int64) {
            state.withLock { state in
                if state.nodes.count >= Self.limit { state.nodes.removeAll(keepingCapacity: true) }
                state.nodes[key] = id
            }
        }
    }

    static func nodePath(
        _ thread: Thread, db: Database, cache: NodeCache, keys: ContentKeys
    ) throws -> (context: [Int64], reply: Int64?) {
        var parent: Int64 = 0
        var parentIsNew = false
        var path: [Int64] = []
        path.reserveCapacity(thread.messages.count)
        for message in thread.messages {
            (parent, parentIsNew) = try node(parent: parent, parentIsNew: parentIsNew, message, db: db, cache: cache, keys: keys)
            path.append(parent)
        }
        let reply = try thread.reply.map {
            try node(parent: parent, parentIsNew: parentIsNew, $0, db: db, cache: cache, keys: keys).id
        }
        return (path, reply)
    }

    private static func node(
        parent: Int64, parentIsNew: Bool, _ message: HashedMessage, db: Database, cache: NodeCache, keys: ContentKeys
    ) throws -> (id: Int64, isNew: Bool) {
        let (messageID, messageIsNew) = try self.messageID(message, db: db, cache: cache, keys: keys)
        let key = NodeCache.NodeKey(parent: parent, message: messageID)
        if let id = cache.node(key) { return (id, false) }
        // A node created in this very walk has no children yet, and a message stored just now
        // is in no node yet: no need to look.
        if !parentIsNew, !messageIsNew {
            let find = try db.cachedStatement(sql: "SELECT id FROM nodes WHERE parent_id = ? AND message_id = ?")
            if let id = try find.firstInt64([parent.databaseValue, messageID.databaseValue]) {
                cache.set(node: key, id)
                return (id, false)
            }
        }
        try db.cachedStatement(sql: "INSERT INTO nodes (parent_id, message_id) VALUES (?, ?)")
            .run([parent.databaseValue, messageID.databaseValue])
        let id = db.lastInsertedRowID
        cache.set(node: key, id)
        return (id, true)
    }

    /// - Returns: also whether this call stored it.
    private static func messageID(
        _ message: HashedMessage, db: Database, cache: NodeCache, keys: ContentKeys
    ) throws -> (id: Int64, isNew: Bool) {
        if let id = cache.message(message.hash) { return (id, false) }
        if let id = try keys.find(message.hash, db: db) {
            cache.set(message: message.hash, id)
            return (id, false)
        }
        let compressed = try message.compressed ?? PayloadCodec.compressPiece(message.message.canonicalBytes)
        try db.cachedStatement(sql: "INSERT INTO messages (hash, message) VALUES (?, ?)")
            .run([message.hash.data.databaseValue, compressed.databaseValue])
        let id = db.lastInsertedRowID
        keys.added(message.hash, id: id)
        cache.set(message: message.hash, id)
        return (id, true)
    }

    /// The session this context continues, if any (see the rules above).
    static func findSession(path: [Int64], key: String?, db: Database) throws -> String? {
        let candidates = try db.cachedStatement(
            sql: """
                SELECT rowid, session_id FROM calls
                WHERE reply_node = ? AND key_fingerprint IS ? AND session_id IS NOT NULL
                ORDER BY rowid DESC LIMIT 16
                """)
        // rowid: the order in which calls were written
        let isTip = try db.cachedStatement(sql: "SELECT NOT EXISTS (SELECT 1 FROM calls WHERE session_id = ? AND rowid > ?)")
        // The last node of the context is the new user turn: a reply can only stand before it.
        for node in path.dropLast().reversed() {
            var rows: [(rowid: Int64, session: String)] = []
            try candidates.forEachRow([node.databaseValue, key.databaseValue]) { row in
                let text = UnsafeRawBufferPointer(
                    start: sqlite3_column_text(row, 1), count: Int(sqlite3_column_bytes(row, 1)))
                rows.append((sqlite3_column_int64(row, 0), String(decoding: text, as: UTF8.self)))
            }
            guard !rows.isEmpty else { continue }
            for row in rows where try isTip.firstInt64([row.session.databaseValue, row.rowid.databaseValue]) == 1 {
                return row.session
            }
            return rows[0].session
        }
        return nil
    }
}
