import Foundation
import GRDB
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
    /// Node ids by (parent, message hash), kept by the writer; nodes are never renumbered.
    final class NodeCache: Sendable {
        private let entries = Mutex<[String: Int64]>([:])
        static let limit = 200_000

        func get(_ key: String) -> Int64? { entries.withLock { $0[key] } }

        func set(_ key: String, _ id: Int64) {
            entries.withLock { entries in
                if entries.count >= Self.limit { entries.removeAll(keepingCapacity: true) }
                entries[key] = id
            }
        }
    }

    static func nodePath(_ thread: Thread, db: Database, cache: NodeCache) throws -> (context: [Int64], reply: Int64?) {
        var parent: Int64 = 0
        var path: [Int64] = []
        path.reserveCapacity(thread.messages.count)
        for message in thread.messages {
            parent = try node(parent: parent, message, db: db, cache: cache)
            path.append(parent)
        }
        let reply = try thread.reply.map { try node(parent: parent, $0, db: db, cache: cache) }
        return (path, reply)
    }

    private static func node(parent: Int64, _ message: HashedMessage, db: Database, cache: NodeCache) throws -> Int64 {
        let key = "\(parent):\(message.hash)"
        if let id = cache.get(key) { return id }
        let find = try db.cachedStatement(sql: "SELECT id FROM nodes WHERE parent_id = ? AND message_hash = ?")
        if let id = try Int64.fetchOne(find, arguments: [parent, message.hash]) {
            cache.set(key, id)
            return id
        }
        try db.cachedStatement(sql: "INSERT OR IGNORE INTO messages (hash, message) VALUES (?, ?)")
            .execute(arguments: [message.hash, message.json])
        try db.cachedStatement(sql: "INSERT INTO nodes (parent_id, message_hash) VALUES (?, ?)")
            .execute(arguments: [parent, message.hash])
        let id = db.lastInsertedRowID
        cache.set(key, id)
        return id
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
            let rows = try Row.fetchAll(candidates, arguments: [node, key])
            guard !rows.isEmpty else { continue }
            for row in rows {
                let session: String = row["session_id"]
                if try Bool.fetchOne(isTip, arguments: [session, row["rowid"] as Int64]) == true { return session }
            }
            return rows[0]["session_id"]
        }
        return nil
    }
}
