import Foundation
import GRDB
import LLMTapCore
@testable import LLMTapStore
import Testing

/// Messages and fragments found by hash through the writer's memory and the keys it moves to
/// `message_keys` / `fragment_keys` (`ContentKeys`).
struct ContentKeysTests {
    /// A threaded session: its context recorded, so its messages are stored (and its request's
    /// fragments compressed against them).
    static func threaded(_ name: String, turns: Int, createdAt: Double) -> [CallRecord] {
        var calls = FragmentTests.session(name, turns: turns, createdAt: createdAt)
        for index in calls.indices { calls[index].context = JSONValue.parse(calls[index].requestBody)?["messages"] }
        return calls
    }

    /// The distinct messages of these calls' contexts and replies.
    static func distinctMessages(_ calls: [CallRecord]) -> Int {
        Set(calls.flatMap { call in
            (call.context?.arrayValue ?? []).map { Store.HashedMessage($0).hash }
                + [Conversation.reply(output: call.output, toolCalls: call.toolCalls).map { Store.HashedMessage($0).hash }].compactMap { $0 }
        }).count
    }

    /// Rows, distinct hashes, and keys in the keys table, of `messages` or `fragments`.
    static func counts(_ store: Store, _ table: String, _ keys: String) async throws -> (rows: Int, distinct: Int, keys: Int) {
        try await store.pool.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table)")!,
             try Int.fetchOne(db, sql: "SELECT count(DISTINCT hash) FROM \(table)")!,
             try Int.fetchOne(db, sql: "SELECT count(*) FROM \(keys)")!)
        }
    }

    @Test func everyRowIsFoundBeforeAndAfterItsKeyMovesAndAfterARestart() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        var store = try Store(path: directory.databasePath, keysMergedAt: 10)
        let first = Self.threaded("a", turns: 12, createdAt: 1_700_000_000)
        for start in stride(from: 0, to: first.count, by: 3) { try await store.insert(Array(first[start..<start + 3])) }
        var messages = try await Self.counts(store, "messages", "message_keys")
        var fragments = try await Self.counts(store, "fragments", "fragment_keys")
        // Each stored once, most keys moved.
        let expected = Self.distinctMessages(first)
        #expect(expected > 20 && messages.rows == expected && messages.distinct == expected)
        #expect(messages.keys >= 10 && messages.keys + store.messageKeys.recentCount == expected)
        #expect(fragments.rows == fragments.distinct && fragments.keys >= 10)
        #expect(fragments.keys + store.fragmentKeys.recentCount == fragments.rows)
        let merged = try await store.pool.read { db in
            try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT name, merged_through FROM content_keys").map {
                ($0[0] as String, $0[1] as Int64)
            })
        }
        #expect(merged["messages"]! >= 10 && merged["fragments"]! >= 10)

        // The same conversation goes on in a new process: the whole history again, two new turns.
        try store.close()
        store = try Store(path: directory.databasePath, keysMergedAt: 10)
        #expect(store.messageKeys.recentCount == 0)  // read back on the first write
        let more = Array(Self.threaded("a", turns: 14, createdAt: 1_700_000_000).suffix(2))
        try await store.insert(more)
        messages = try await Self.counts(store, "messages", "message_keys")
        fragments = try await Self.counts(store, "fragments", "fragment_keys")
        #expect(messages.rows == Self.distinctMessages(first + more) && messages.distinct == messages.rows)
        #expect(messages.rows > expected)
        #expect(fragments.rows == fragments.distinct)
        for call in first + more {
            let stored = try #require(try store.call(id: call.id))
            #expect(stored.requestBody == call.requestBody && stored.context == call.context)
        }
        #expect(try store.verifyChain().broken == nil)
    }

    /// A write that fails part-way rolls back the messages it stored; the ids it handed out go
    /// to the next rows written. The writer must not keep them.
    @Test func aFailedWriteLeavesNoIdBehind() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let store = try Store(path: directory.databasePath)
        let a = Self.threaded("a", turns: 2, createdAt: 1_700_000_000)
        let b = Self.threaded("b", turns: 2, createdAt: 1_700_000_100)
        let c = Self.threaded("c", turns: 2, createdAt: 1_700_000_200)
        try await store.insert(a)
        try await store.pool.write { db in
            try db.execute(sql: "CREATE TRIGGER refuse BEFORE INSERT ON payloads BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        }
        await #expect(throws: DatabaseError.self) { try await store.insert(b) }
        try await store.pool.write { db in try db.execute(sql: "DROP TRIGGER refuse") }
        try await store.insert(c)  // takes the ids b's messages had for a moment
        try await store.insert(b)
        for call in a + b + c { #expect(try store.call(id: call.id)?.context == call.context) }
        let messages = try await Self.counts(store, "messages", "message_keys")
        #expect(messages.rows == messages.distinct)
        #expect(try store.verifyChain().broken == nil)
    }

    @Test func verifyCatchesAKeyPointedElsewhere() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let store = try Store(path: directory.databasePath, keysMergedAt: 4)
        try await store.insert(Self.threaded("a", turns: 4, createdAt: 1_700_000_000))
        #expect(try store.verifyChain().broken == nil)
        try await store.pool.write { db in
            try db.execute(
                sql: """
                    UPDATE message_keys SET id = (SELECT max(id) FROM messages)
                    WHERE hash = (SELECT hash FROM message_keys WHERE id != (SELECT max(id) FROM messages) LIMIT 1)
                    """)
            #expect(db.changesCount == 1)
        }
        #expect(try store.verifyChain().broken?.reason == "a stored message's key was changed")
    }

    /// The filter is read from the keys table a slice per write; until it holds them all, every
    /// lookup goes to the table. Then it answers for hashes never stored, and only for them.
    @Test func theFilterFillsInSlicesAndNeverHidesAStoredKey() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let store = try Store(path: directory.databasePath)
        let stored = (0..<20).map { Hash16(of: Array("stored \($0)".utf8)) }
        try await store.pool.write { db in
            for (n, hash) in stored.enumerated() {
                try db.execute(sql: "INSERT INTO messages (id, hash, message) VALUES (?, ?, x'00')", arguments: [n + 1, hash.data])
            }
            // The first 15 merged, the rest newer.
            try db.execute(sql: "INSERT INTO message_keys SELECT hash, id FROM messages WHERE id <= 15")
            try db.execute(sql: "UPDATE content_keys SET merged_through = 15 WHERE name = 'messages'")
        }
        let keys = ContentKeys(table: "messages", keys: "message_keys", filterSlice: 4)
        var slices = 0
        while !keys.filterComplete {
            try await store.pool.write { db in
                try keys.sync(db)
                for (n, hash) in stored.enumerated() { #expect(try keys.find(hash, db: db) == Int64(n + 1)) }
            }
            slices += 1
        }
        #expect(slices == 4)  // 15 keys, 4 a slice
        #expect(keys.recentCount == 5)
        let never = (0..<2_000).map { Hash16(of: Array("never \($0)".utf8)) }
        let misses = try await store.pool.read { db in
            never.filter { hash in (try? Int64.fetchOne(db, sql: "SELECT 1 FROM message_keys WHERE hash = ?", arguments: [hash.data])) == nil }
        }
        #expect(misses.count == never.count)
        try await store.pool.write { db in
            try keys.sync(db)
            for hash in never { #expect(try keys.find(hash, db: db) == nil) }
            for (n, hash) in stored.enumerated() { #expect(try keys.find(hash, db: db) == Int64(n + 1)) }
        }
        var filter = KeyFilter(capacity: 0)
        for hash in stored { filter.insert(hash) }
        #expect(stored.allSatisfy { filter.mayContain($0) })
        #expect(never.filter { filter.mayContain($0) }.count < 20)  // false "maybe": under 1 %
    }

    /// Another process (`llmtap import` beside `llmtap serve`) stores and merges keys: the
    /// first writer's map and filter take them in before its next write stores anything.
    @Test func keysAnotherProcessMergedAreFound() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let mergedThrough = { (store: Store) in
            try await store.pool.read { db in try Int64.fetchOne(db, sql: "SELECT merged_through FROM content_keys WHERE name = 'messages'")! }
        }
        let a = Self.threaded("a", turns: 3, createdAt: 1_700_000_000)
        let b = Self.threaded("b", turns: 6, createdAt: 1_700_000_100)
        let first = try Store(path: directory.databasePath, keysMergedAt: 4)
        try await first.insert(a)
        #expect(first.messageKeys.filterComplete)
        let before = try await mergedThrough(first)
        let second = try Store(path: directory.databasePath, keysMergedAt: 4)
        try await second.insert(Array(b.prefix(3)))
        #expect(try await mergedThrough(second) > before)
        // The first goes on with b's conversation: its earlier messages are found, not stored again.
        try await first.insert(Array(b.suffix(3)))
        let messages = try await Self.counts(first, "messages", "message_keys")
        #expect(messages.rows == Self.distinctMessages(a + b) && messages.distinct == messages.rows)
        for call in b { #expect(try first.call(id: call.id)?.context == call.context) }
        #expect(try first.verifyChain().broken == nil)
    }
    /// A merge moves `keysMergedPerWrite` keys a write, out of the writer's map; the merge point
    /// moves only once all of its keys are in, and a write that fails part-way through a merge
    /// loses none.
    @Test func aMergeIsSpreadOverTheWritesThatFollow() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let store = try Store(path: directory.databasePath, keysMergedAt: 12, keysMergedPerWrite: 4)
        let state = {
            try await store.pool.read { db in
                (keys: try Int.fetchOne(db, sql: "SELECT count(*) FROM message_keys")!,
                 fragmentKeys: try Int.fetchOne(db, sql: "SELECT count(*) FROM fragment_keys")!,
                 mergedThrough: try Int64.fetchOne(db, sql: "SELECT merged_through FROM content_keys WHERE name = 'messages'")!,
                 // Rows up to the merge point whose key is not in the table: the writer would not find them.
                 unkeyed: try Int.fetchOne(
                    db,
                    sql: """
                        SELECT count(*) FROM messages m WHERE m.id <= (SELECT merged_through FROM content_keys WHERE name = 'messages')
                          AND NOT EXISTS (SELECT 1 FROM message_keys k WHERE k.hash = m.hash)
                        """)!)
            }
        }
        let calls = Self.threaded("a", turns: 24, createdAt: 1_700_000_000)
        var previous = try await state()
        var keysGrewWithoutMergePoint = false
        var mergePointMoves = 0
        for (n, call) in calls.enumerated() {
            if n == 9 {
                // A write that fails part-way, whatever slice it carried: rolled back, the merge starts over later.
                try await store.pool.write { db in
                    try db.execute(sql: "CREATE TRIGGER refuse BEFORE INSERT ON payloads BEGIN SELECT RAISE(ABORT, 'disk full'); END")
                }
                await #expect(throws: DatabaseError.self) { try await store.insert([call]) }
                try await store.pool.write { db in try db.execute(sql: "DROP TRIGGER refuse") }
            }
            try await store.insert([call])
            let now = try await state()
            #expect(now.keys - previous.keys <= 4)
            #expect(now.unkeyed == 0)
            // One key table's slice a write; a slice's keys leave the map, which stays within its reserve.
            #expect(now.keys == previous.keys || now.fragmentKeys == previous.fragmentKeys)
            #expect(store.messageKeys.recentCount <= 12 + 4)
            if now.keys > previous.keys, now.mergedThrough == previous.mergedThrough { keysGrewWithoutMergePoint = true }
            if now.mergedThrough > previous.mergedThrough { mergePointMoves += 1 }
            previous = now
        }
        #expect(keysGrewWithoutMergePoint)
        #expect(mergePointMoves >= 2)
        let messages = try await Self.counts(store, "messages", "message_keys")
        #expect(messages.rows == Self.distinctMessages(calls) && messages.distinct == messages.rows)
        #expect(messages.keys + store.messageKeys.recentCount >= messages.rows)
        for call in calls { #expect(try store.call(id: call.id)?.context == call.context) }
        #expect(try store.verifyChain().broken == nil)
    }
}
