import Foundation
import GRDB
import LLMTapCore
@testable import LLMTapStore
import Testing

/// A database written by the first released schema (migration v1 alone) opens under the
/// current one without losing a call: every later migration applies, back-fills its sums,
/// and old calls read back as they were.
struct SchemaEvolutionTests {
    /// The keys the first release gave the two messages below (of their normalized form).
    static let messageHashes: StatementArguments = [
        Hash16(of: Conversation.normalize(.object(["role": .string("system"), "content": .string("You are terse.")])).canonicalBytes).data,
        Hash16(of: Conversation.normalize(.object(["role": .string("user"), "content": .string("Capital of France?")])).canonicalBytes).data,
    ]

    @Test func aFirstSchemaDatabaseMigratesWithoutLoss() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let queue = try DatabaseQueue(path: directory.databasePath)
        try Migrations.migrator.migrate(queue, upTo: "v1")
        // Rows as the first release wrote them: a call with a prompt context, its payload, a tag, its search entry.
        // Payloads as the first release compressed them: plain zlib, no preset dictionary.
        let payload = Data([
            120, 156, 171, 86, 202, 205, 79, 73, 205, 81, 178, 82, 74, 47, 40, 209, 53, 201, 215, 205, 205, 204, 203, 84,
            210, 81, 42, 40, 202, 207, 45, 40, 1, 10, 103, 164, 230, 228, 228, 43, 213, 2, 0, 16, 67, 13, 101,
        ])
        let empty = Data([120, 156, 3, 0, 0, 0, 0, 1])
        try await queue.write { db in
            try db.execute(
                sql: """
                    INSERT INTO calls (id, created_at, session_id, session_source, provider, endpoint, api_format, tags, model,
                      context, chat_input, is_stream, http_status, output, outcome, input_tokens, output_tokens, total_tokens,
                      usage_source, cost_nano_usd, pricing_version, latency_s)
                    VALUES ('old-1', 1733000000.5, 's-old', 'header', 'openai', '/v1/completions', 'openai.chat', '{"team":"a"}',
                      'gpt-4o-mini', '"hello"', 'hello', 0, 200, 'hi there', 'ok', 5, 2, 7, 'upstream', 1950, '2025-11-15', 0.25)
                    """)
            try db.execute(
                sql: "INSERT INTO payloads VALUES ('old-1', 'zlib', ?, 40, ?, 0, NULL)", arguments: [payload, empty])
            try db.execute(sql: "INSERT INTO tags VALUES ('old-1', 'team', 'a')")
            // A threaded call: its context is two messages (stored as JSON text then) on a path of nodes.
            try db.execute(
                sql: """
                    INSERT INTO messages (id, hash, message) VALUES
                      (1, ?, '{"content":"You are terse.","role":"system"}'), (2, ?, '{"content":"Capital of France?","role":"user"}')
                    """,
                arguments: Self.messageHashes)
            try db.execute(sql: "INSERT INTO nodes (id, parent_id, message_id) VALUES (1, 0, 1), (2, 1, 2)")
            try db.execute(
                sql: """
                    INSERT INTO calls (id, created_at, provider, endpoint, api_format, model, is_stream, outcome, latency_s, context_node)
                    VALUES ('old-2', 1733000001.5, 'openai', '/v1/chat/completions', 'openai.chat', 'gpt-4o-mini', 0, 'ok', 0.25, 2)
                    """)
            try db.execute(sql: "INSERT INTO calls_fts (rowid, chat_input, output) SELECT rowid, chat_input, output FROM calls")
        }
        try queue.close()

        let store = try Store(path: directory.databasePath)
        #expect(
            try store.appliedMigrations() == [
                "v1", "v2-model-aliases", "v3-sessions-and-hourly-cost", "v4-audit-chain", "v5-batch-sums",
                "v6-request-fragments", "v7-stats-sketches", "v8-compressed-messages", "v9-fragment-ids", "v10-text-once",
                "v11-fragments-against-messages", "v12-search-terms-only", "v13-payloads-by-rowid", "v14-content-keys",
                "v15-checks-without-lists",
            ])
        let old = try #require(try store.call(id: "old-1"))
        #expect(old.output == "hi there" && old.context == .string("hello") && old.tags == ["team": "a"])
        #expect(old.requestBody == Array(#"{"model":"gpt-4o-mini","prompt":"hello"}"#.utf8))
        #expect(old.costNanoUSD == 1950 && old.usage?.totalTokens == 7 && old.requestedModel == nil)
        // Its messages, compressed by v8, read back as written.
        #expect(
            try store.call(id: "old-2")?.context == .array([
                .object(["role": .string("system"), "content": .string("You are terse.")]),
                .object(["role": .string("user"), "content": .string("Capital of France?")]),
            ]))
        var search = CallFilter()
        search.text = "there"
        #expect(try store.requests(filter: search, limit: 5, cursor: nil).items.map(\.id) == ["old-1"])
        // Its row in `tags` survived `calls` being rebuilt (v15), and finds it.
        var tagged = CallFilter()
        tagged.tags = [(key: "team", value: "a")]
        #expect(try store.requests(filter: tagged, limit: 5, cursor: nil).items.map(\.id) == ["old-1"])
        // The sums of v3 were back-filled from the old call.
        #expect(try store.sessions(filter: CallFilter(), limit: 5, cursor: nil).items.map(\.id) == ["s-old"])
        #expect(try store.cost(groupBy: .model, filter: CallFilter()).total.costNanoUSD == 1950)
        // And the stats sketches of v7.
        let stats = try store.stats(filter: CallFilter())
        #expect(stats.map(\.model) == ["gpt-4o-mini"] && stats.first?.requests == 2)
        #expect(stats.first?.latency.map { abs($0.p50 - 0.25) < 0.0025 } == true)
        // The old messages' keys moved to `message_keys` (v14): a new call with that context stores
        // only its reply.
        let messageRows = { try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM messages")! } }
        #expect(try await messageRows() == 2)
        try await store.insert([chatRecord(turns: ["Capital of France?"], reply: "Paris.")])
        #expect(try await messageRows() == 3)
        // New calls chain after it; the old call is reported as written before the chain.
        try await store.insert([sampleRecord(1)])
        let report = try store.verifyChain()
        #expect(report.unchained == 2 && report.verified == 2 && report.broken == nil)
        #expect(try store.integrityCheck() == "ok")
    }

    /// A chained database of schema v11 (positional search index, payloads keyed by call id)
    /// migrates to terms-only search and payloads keyed by rowid: every link still verifies
    /// (the payload digest still covers the call's id and encoding), bodies read back exactly,
    /// and the rebuilt index finds text that lives only in the messages.
    @Test func aChainedV11DatabaseMigratesAndStillVerifies() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let current = try Store(path: directory.databasePath)
        // Request templates over fragments, threaded calls whose text is read from their messages, a plain call.
        var threaded = [
            chatRecord(turns: ["Which printer came first?"], reply: "Gutenberg, around 1450."),
            chatRecord(turns: ["Which printer came first?", "Gutenberg, around 1450.", "And in England?"], reply: "Caxton."),
        ]
        threaded[0].createdAt = 1_733_000_010
        threaded[1].createdAt = 1_733_000_011
        let calls = FragmentTests.session("s1", turns: 4, createdAt: 1_733_000_000) + threaded + [sampleRecord(20)]
        try await current.insert(calls)
        let tables = ["messages", "nodes", "calls", "fragments", "sessions", "tags", "cost_hourly", "stats_hourly"]
        let oldPath = directory.url.appendingPathComponent("v11.sqlite").path
        let queue = try DatabaseQueue(path: oldPath)
        try Migrations.migrator.migrate(queue, upTo: "v11-fragments-against-messages")
        try await queue.writeWithoutTransaction { db in
            try db.execute(sql: "ATTACH DATABASE ? AS now", arguments: [directory.databasePath])
            try db.inTransaction {
                for table in tables { try db.execute(sql: "INSERT INTO main.\(table) SELECT * FROM now.\(table)\(table == "calls" ? " ORDER BY rowid" : "")") }
                try db.execute(
                    sql: """
                        INSERT INTO main.payloads (call_id, encoding, request, request_size, response, response_size,
                          response_content_encoding, digest, request_format, fragment_ids)
                        SELECT c.id, 'zlib', p.request, p.request_size, p.response, p.response_size, p.response_content_encoding,
                          p.digest, p.request_format, p.fragment_ids
                        FROM now.payloads p JOIN now.calls c ON c.rowid = p.call_rowid
                        """)
                return .commit
            }
            try db.execute(sql: "DETACH DATABASE now")
        }
        try queue.close()
        // The key that signs retention checkpoints travels with the file.
        if FileManager.default.fileExists(atPath: directory.databasePath + ".fingerprint-key") {
            try FileManager.default.copyItem(atPath: directory.databasePath + ".fingerprint-key", toPath: oldPath + ".fingerprint-key")
        }

        let migrated = try Store(path: oldPath)
        let report = try migrated.verifyChain()
        #expect(report.broken == nil && report.verified == calls.count && report.unchained == 0)
        for call in calls {
            let stored = try #require(try migrated.call(id: call.id))
            #expect(stored.requestBody == call.requestBody && stored.responseBody == call.responseBody)
        }
        let fromThread = try await migrated.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM calls WHERE text_from_thread = 3")!
        }
        #expect(fromThread == 2)  // the test covers text kept only in the messages
        #expect(try migrated.found("Gutenberg") == [threaded[0].id])
        #expect(try migrated.found("england caxton") == [threaded[1].id])
        #expect(try migrated.found("answer 20") == [calls.last!.id])
        try await migrated.pool.write { db in try db.execute(sql: "INSERT INTO calls_fts (calls_fts) VALUES ('integrity-check')") }
        // Payloads still go with their calls.
        #expect(try await migrated.prune(before: 1_733_000_002) == 2)
        #expect(try await migrated.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM payloads")! } == calls.count - 2)
        #expect(try migrated.verifyChain().broken == nil)
    }
}
