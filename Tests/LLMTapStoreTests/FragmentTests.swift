import Foundation
import GRDB
import LLMTapCore
import Testing

@testable import LLMTapStore

/// Request bodies of multi-turn sessions stored as templates over shared fragments: exact
/// bytes back, each message stored once, fragments covered by `verify` and freed by retention.
struct FragmentTests {
    static let words = "book edition catalogue index author chapter shelf order price stock review series cover paper print reader page title volume atlas novel poem essay letter map guide".split(separator: " ")

    /// Varied text (repeated text would flatter any compressor), the same for the same seed.
    static func text(_ seed: Int, words count: Int) -> String {
        var state = UInt64(truncatingIfNeeded: seed) &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return String(words[Int(state >> 33) % words.count])
        }.joined(separator: " ")
    }

    static let system = "You are the support assistant of a bookshop. " + text(1, words: 300)

    /// A `turns`-turn session as a chat client sends it: the whole history every time.
    static func session(_ name: String, turns: Int, createdAt: Double, system: String = system) -> [CallRecord] {
        var messages: [JSONValue] = [.object(["role": .string("system"), "content": .string(system)])]
        return (0..<turns).map { turn in
            messages.append(.object([
                "role": .string("user"),
                "content": .string("Turn \(turn): " + text(name.hashValue &+ turn, words: 12)),
            ]))
            // Spaced and ordered as a client would, not canonically.
            let body = #"{"model": "gpt-4o-mini", "messages": ["#
                + messages.map { message in
                    #"{"role": "\#(message["role"]!.stringValue!)", "content": \#(JSONValue.string(message["content"]!.stringValue!).canonicalText)}"#
                }.joined(separator: ", ") + #"], "stream": true}"#
            var record = CallRecord(
                createdAt: createdAt + Double(turn), provider: "openai", endpoint: "/v1/chat/completions", apiFormat: "openai.chat")
            record.sessionID = name
            record.sessionSource = .header
            record.requestBody = Array(body.utf8)
            record.responseBody = Array("data: {\"choices\":[{\"delta\":{\"content\":\"Answer \(turn) for \(name).\"}}]}\n\ndata: [DONE]\n\n".utf8)
            let answer = "We have \(turn) of them. " + text(name.hashValue &+ 1000 &+ turn, words: 40)
            messages.append(.object(["role": .string("assistant"), "content": .string(answer)]))
            return record
        }
    }

    @Test func sessionsGiveBackExactBytesAndStoreEachMessageOnce() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let store = try Store(path: directory.databasePath)
        let calls = Self.session("s1", turns: 20, createdAt: 1_700_000_000)
        try await store.insert(calls)
        for call in calls { #expect(try store.call(id: call.id)?.requestBody == call.requestBody) }

        let (fragments, stored, templated) = try await store.pool.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT count(*) FROM fragments")!,
                try Int.fetchOne(db, sql: "SELECT sum(length(request)) FROM payloads")! + Int.fetchOne(db, sql: "SELECT sum(length(bytes)) FROM fragments")!,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM payloads WHERE request_format = 3")!
            )
        }
        // Each long message once: the system prompt, the answers, the user turns over the size for a fragment.
        #expect(fragments == Self.fragmentHashes(calls).count)
        #expect(fragments >= 1 + 19)
        #expect(templated == 20)
        // Compressed whole, the same bodies take far more.
        let compressor = try PayloadCodec.Compressor()
        let whole = try calls.reduce(0) { $0 + (try compressor.compress($1.requestBody).count) }
        #expect(stored * 3 < whole * 2, "\(stored) bytes stored, \(whole) compressed whole")
        #expect(try store.verifyChain().broken == nil)
    }

    /// The distinct fragments of these calls' request bodies.
    static func fragmentHashes(_ calls: [CallRecord]) -> Set<Hash16> {
        Set(calls.flatMap { call in PayloadFragments.slices(call.requestBody).map { PayloadFragments.hash(call.requestBody[$0]) } })
    }

    /// With the conversation threaded (a context recorded), each fragment that is a message is
    /// compressed against that message's stored JSON: a few dozen bytes where it took hundreds,
    /// and the exact bytes back.
    @Test func fragmentsThatAreMessagesAreCompressedAgainstThem() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        var calls = Self.session("s1", turns: 12, createdAt: 1_700_000_000)
        for index in calls.indices {
            calls[index].context = JSONValue.parse(calls[index].requestBody)?["messages"]
        }
        let store = try Store(path: directory.databasePath)
        try await store.insert(calls)
        for call in calls { #expect(try store.call(id: call.id)?.requestBody == call.requestBody) }
        let (against, total, stored) = try await store.pool.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT count(*) FROM fragments WHERE message_id IS NOT NULL")!,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM fragments")!,
                try Int.fetchOne(db, sql: "SELECT sum(length(bytes)) FROM fragments")!
            )
        }
        #expect(against == total && total == Self.fragmentHashes(calls).count)
        // The same fragments compressed on their own.
        var alone = 0
        var seen = Set<Hash16>()
        for call in calls {
            for slice in PayloadFragments.slices(call.requestBody) where seen.insert(PayloadFragments.hash(call.requestBody[slice])).inserted {
                alone += try PayloadCodec.compressPiece(Array(call.requestBody[slice])).count
            }
        }
        #expect(stored * 4 < alone, "\(stored) bytes against their messages, \(alone) alone")
        #expect(try store.verifyChain().broken == nil)
    }

    @Test func bodiesThatAreNotObjectsOrHaveNothingLongStayWhole() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let store = try Store(path: directory.databasePath)
        var records = [
            sampleRecord(1, payload: "not json at all " + String(repeating: "x", count: 300)),
            sampleRecord(2, payload: #"{"model":"m","messages":[{"role":"user","content":"short"}]}"#),
            sampleRecord(3, payload: #"{"model":"m","messages":[{"role":"user","content":""# + String(repeating: "y", count: 300)),
        ]
        records[0].createdAt = 1
        try await store.insert(records)
        for record in records { #expect(try store.call(id: record.id)?.requestBody == record.requestBody) }
        let templated = try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM payloads WHERE request_format = 3")! }
        #expect(templated == 0)
    }

    @Test func verifyCatchesAnEditedFragment() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let store = try Store(path: directory.databasePath)
        try await store.insert(Self.session("s1", turns: 3, createdAt: 1_700_000_000))
        #expect(try store.verifyChain().broken == nil)
        let forged = try PayloadCodec.compress(Array(Self.system.replacingOccurrences(of: "brief", with: "rude ").utf8))
        try await store.pool.write { db in
            try db.execute(sql: "UPDATE fragments SET bytes = ? WHERE size = (SELECT max(size) FROM fragments)", arguments: [forged])
            #expect(db.changesCount == 1)
        }
        let report = try store.verifyChain()
        #expect(report.broken?.id.hasPrefix("fragment ") == true)
    }

    /// Templates name fragments by row id; the chain covers the fragments' hashes, so putting
    /// another fragment (one that hashes right) in a fragment's place breaks the calls using it.
    @Test func verifyCatchesAFragmentReplacedByAnother() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let store = try Store(path: directory.databasePath)
        let calls = Self.session("s1", turns: 3, createdAt: 1_700_000_000)
        try await store.insert(calls)
        let forged = Array(("{\"role\": \"system\", \"content\": \"You are rude. " + Self.text(7, words: 300) + "\"}").utf8)
        try await store.pool.write { db in
            try db.execute(
                sql: "UPDATE fragments SET hash = ?, bytes = ?, size = ? WHERE size = (SELECT max(size) FROM fragments)",
                arguments: [PayloadFragments.hash(forged).data, try PayloadCodec.compressPiece(forged), forged.count])
            #expect(db.changesCount == 1)
        }
        let report = try store.verifyChain()
        #expect(report.broken?.id == calls[0].id, "\(String(describing: report.broken))")
    }

    @Test func fragmentIDsRoundTripAsRunsAndSmallDeltas() throws {
        let ids: [Int64] = [1, 2, 3, 4, 900_000, 900_001, 7, 7, 8, Int64.max, 0, Int64.min, -1, 0, 1]
        #expect(try PayloadFragments.decode(ids: PayloadFragments.encode(ids: ids), format: 3) == ids)
        // A 20-turn session's list: its system prompt's fragment, then the messages, stored one after another.
        #expect(PayloadFragments.encode(ids: [12] + Array(5_000...5_039)).count == 1 + 3 + 1)
        #expect(PayloadFragments.encode(ids: Array(5_000...5_019)).count == 3 + 1)
        #expect(throws: (any Error).self) { try PayloadFragments.decode(ids: [0x80], format: 3) }
        #expect(throws: (any Error).self) { try PayloadFragments.decode(ids: [0xFF, 0xFF, 0xFF, 0x7F], format: 3) }  // a run too long for its list
        #expect(try PayloadFragments.decode(ids: Self.formatTwo(ids), format: 2) == ids)
    }

    /// Fragment ids as format 2 wrote them (before runs): each id a zigzag varint delta.
    static func formatTwo(_ ids: [Int64]) -> [UInt8] {
        var bytes: [UInt8] = []
        var previous: Int64 = 0
        for id in ids {
            let delta = id &- previous
            PayloadFragments.appendVarint(UInt64(bitPattern: (delta << 1) ^ (delta >> 63)), to: &bytes)
            previous = id
        }
        return bytes
    }

    /// Rows written before id runs (format 2: every id a delta) read back exactly.
    @Test func formatTwoIDListsStillRead() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let store = try Store(path: directory.databasePath)
        let calls = Self.session("s1", turns: 6, createdAt: 1_700_000_000)
        try await store.insert(calls)
        try await store.pool.write { db in
            let rows = try Row.fetchAll(db, sql: "SELECT call_rowid, fragment_ids FROM payloads WHERE request_format = 3")
            #expect(rows.count == calls.count)
            for row in rows {
                let ids = try PayloadFragments.decode(ids: Array(row["fragment_ids"] as Data), format: 3)
                try db.execute(
                    sql: "UPDATE payloads SET request_format = 2, fragment_ids = ? WHERE call_rowid = ?",
                    arguments: [Data(Self.formatTwo(ids)), row["call_rowid"] as Int64])
            }
        }
        for call in calls { #expect(try store.call(id: call.id)?.requestBody == call.requestBody) }
        #expect(try store.verifyChain().broken?.id == calls[0].id)  // the format is part of the digest
    }

    /// A database written before v9 holds format-1 templates (fragments named by hash): they
    /// read back exactly after the migration.
    @Test func formatOneTemplatesStillRead() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let queue = try DatabaseQueue(path: directory.databasePath)
        try Migrations.migrator.migrate(queue, upTo: "v8-compressed-messages")
        let fragment = Array(("{\"role\": \"system\", \"content\": \"" + Self.system + "\"}").utf8)
        let (head, tail) = (Array(#"{"model": "m", "messages": ["#.utf8), Array(#"]}"#.utf8))
        let body = head + fragment + tail
        let hash = PayloadFragments.hash(fragment)
        let template = [0, UInt8(head.count)] + head + [1] + hash.bytes + [0, UInt8(tail.count)] + tail
        try await queue.write { db in
            try db.execute(
                sql: """
                    INSERT INTO calls (id, created_at, provider, endpoint, api_format, is_stream, outcome, latency_s)
                    VALUES ('v8-call', 1733000000, 'openai', '/v1/chat/completions', 'openai.chat', 0, 'ok', 0.5)
                    """)
            try db.execute(
                sql: "INSERT INTO fragments (hash, bytes, size, last_rowid) VALUES (?, ?, ?, 1)",
                arguments: [hash.data, try PayloadCodec.compress(fragment), fragment.count])
            try db.execute(
                sql: """
                    INSERT INTO payloads (call_id, encoding, request, request_size, response, response_size, request_format)
                    VALUES ('v8-call', 'zlib', ?, ?, ?, 0, 1)
                    """,
                arguments: [try PayloadCodec.compress(template), body.count, try PayloadCodec.compress([])])
        }
        try queue.close()
        let store = try Store(path: directory.databasePath)
        #expect(try store.call(id: "v8-call")?.requestBody == body)
        // New calls beside it use format 2 (the same system prompt: they find its fragment by hash).
        try await store.insert(Self.session("s1", turns: 2, createdAt: 1_733_000_100))
        let formats = try await store.pool.read { db in try Int.fetchAll(db, sql: "SELECT request_format FROM payloads ORDER BY rowid") }
        #expect(formats == [1, 3, 3])
        #expect(try store.verifyChain().broken == nil)
    }

    @Test func retentionKeepsFragmentsTheWriterMayNotHaveTouched() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let store = try Store(path: directory.databasePath)  // the default slack: last_rowid may lag
        let old = Self.session("old", turns: 5, createdAt: 1_000)
        let new = Self.session("new", turns: 5, createdAt: 2_000_000_000)
        try await store.insert(old)
        try await store.insert(new)
        #expect(try await store.prune(before: 1_000_000) == 5)
        for call in new { #expect(try store.call(id: call.id)?.requestBody == call.requestBody) }
        #expect(try store.verifyChain().broken == nil)
    }

    @Test(arguments: [false, true])
    func retentionFreesFragmentsNoKeptCallUses(payloadsOnly: Bool) async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let store = try Store(path: directory.databasePath, fragmentSlack: 0)
        let old = Self.session("old", turns: 5, createdAt: 1_000)
        let new = Self.session("new", turns: 5, createdAt: 2_000_000_000)  // same system prompt
        try await store.insert(old)
        try await store.insert(new)
        let before = try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM fragments")! }
        #expect(before == Self.fragmentHashes(old + new).count)
        if payloadsOnly {
            #expect(try await store.dropPayloads(before: 1_000_000) == 5)
        } else {
            #expect(try await store.prune(before: 1_000_000) == 5)
        }
        let after = try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM fragments")! }
        #expect(after == Self.fragmentHashes(new).count)  // the old session's own fragments went; the shared prompt stays
        #expect(after < before)
        for call in new { #expect(try store.call(id: call.id)?.requestBody == call.requestBody) }
        #expect(try store.verifyChain().broken == nil)
    }
}
