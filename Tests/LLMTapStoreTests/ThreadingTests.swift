import Foundation
import GRDB
import LLMTapCore
@testable import LLMTapStore
import Testing

/// A chat call: `turns` alternate user/assistant texts before the last user text; `reply` is the answer.
func chatRecord(system: String = "You are terse.", turns: [String], reply: String, key: String? = "key-a", session: String? = nil)
    -> CallRecord
{
    var record = sampleRecord(0)
    var messages: [JSONValue] = [.object(["role": .string("system"), "content": .string(system)])]
    for (n, text) in turns.enumerated() {
        let role = n % 2 == 0 ? "user" : "assistant"
        // clients echo assistant turns back in several shapes; all must thread the same
        let content: JSONValue = role == "user" ? .array([.object(["type": .string("text"), "text": .string(text)])]) : .string(text)
        var message: [String: JSONValue] = ["role": .string(role), "content": content]
        if role == "assistant" { message["refusal"] = .null }
        messages.append(.object(message))
    }
    record.context = .array(messages)
    record.chatInput = turns.last
    record.output = reply
    record.keyFingerprint = key
    record.sessionID = session
    record.sessionSource = session == nil ? nil : .header
    return record
}

func write(_ records: [CallRecord], to directory: TestDirectory) async throws -> Store {
    let store = try Store(path: directory.databasePath)
    let recorder = Recorder(store: store, spool: Spool(path: directory.spoolPath), logger: testLogger)
    for record in records {
        recorder.submit(record)
    }
    try await runUntilWritten(recorder, count: records.count)
    return store
}

struct ThreadingTests {
    @Test func aConversationResentTurnByTurnIsOneSession() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let calls = [
            chatRecord(turns: ["Capital of France?"], reply: "Paris."),
            chatRecord(turns: ["Capital of France?", "Paris.", "And of Italy?"], reply: "Rome."),
            chatRecord(turns: ["Capital of France?", "Paris.", "And of Italy?", "Rome.", "Spain?"], reply: "Madrid."),
        ]
        let store = try await write(calls, to: directory)
        let stored = try calls.map { try #require(try store.call(id: $0.id)) }
        #expect(stored[0].sessionID == calls[0].id)
        #expect(stored.allSatisfy { $0.sessionID == calls[0].id && $0.sessionSource == .auto })
        // system, 3 user turns, 3 assistant replies: each stored once
        let db = try DatabaseQueue(path: directory.databasePath)
        let messages = try await db.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM messages") }
        #expect(messages == 7)
    }

    /// Messages are stored compressed, read back as sent, and covered by `verify`: a message
    /// edited in place no longer hashes to its key.
    @Test func messagesAreStoredCompressedAndVerifyCatchesAnEditedOne() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let long = "Tell me about the " + Array(repeating: "history of the printing press", count: 12).joined(separator: " and ")
        let calls = [
            chatRecord(turns: [long], reply: "It began in Mainz."),
            chatRecord(turns: [long, "It began in Mainz.", "Who printed first?"], reply: "Gutenberg."),
        ]
        let store = try await write(calls, to: directory)
        // (each message in the form first seen: the reply as recorded, without the echo's `refusal: null`)
        #expect(
            try store.call(id: calls[1].id)?.context?.arrayValue?.map(Conversation.normalize)
                == calls[1].context?.arrayValue?.map(Conversation.normalize))
        let (stored, longest) = try await store.pool.read { db in
            (try Int.fetchOne(db, sql: "SELECT sum(length(message)) FROM messages")!,
             try Data.fetchOne(db, sql: "SELECT message FROM messages ORDER BY length(message) DESC LIMIT 1")!)
        }
        let canonical = calls[1].context!.arrayValue!.map(\.canonicalBytes.count).reduce(0, +) + 40
        #expect(stored < canonical * 2 / 3, "\(stored) bytes stored for \(canonical) of messages")
        #expect(String(decoding: try PayloadCodec.decompress(longest, size: nil), as: UTF8.self).contains("printing press"))
        #expect(try store.verifyChain().broken == nil)

        let forged = try PayloadCodec.compress(
            Array(calls[1].context!.arrayValue![1].canonicalText.replacingOccurrences(of: "printing press", with: "steam engine").utf8))
        try await store.pool.write { db in
            try db.execute(
                sql: "UPDATE messages SET message = ? WHERE id = (SELECT id FROM messages ORDER BY length(message) DESC LIMIT 1)",
                arguments: [forged])
            #expect(db.changesCount == 1)
        }
        #expect(try store.verifyChain().broken?.id.hasPrefix("message ") == true)
    }

    /// A threaded call's input and output text is stored once, in its messages: the row keeps
    /// neither, every reader gets both back, search finds them, and retention takes them out
    /// of the search index. A call whose input is not its last user message keeps its own.
    @Test func chatInputAndOutputAreStoredOnceInTheMessages() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        var calls = [
            chatRecord(turns: ["Which printer came first?"], reply: "Gutenberg, around 1450."),
            chatRecord(turns: ["Which printer came first?", "Gutenberg, around 1450.", "And in England?"], reply: "Caxton."),
            chatRecord(turns: ["Name a typeface."], reply: "Garamond."),
        ]
        calls[0].createdAt = 1_000
        calls[2].chatInput = "an input of another wire format"
        let store = try await write(calls, to: directory)
        let rows = try await store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT id, chat_input, output, text_from_thread FROM calls ORDER BY rowid")
        }
        #expect(rows.map { $0["text_from_thread"] as Int64 } == [3, 3, 2])
        #expect(rows[0]["chat_input"] as String? == nil && rows[0]["output"] as String? == nil)
        #expect(rows[2]["chat_input"] as String? == "an input of another wire format")
        for call in calls {
            let stored = try #require(try store.call(id: call.id))
            #expect(stored.chatInput == call.chatInput && stored.output == call.output)
        }
        let listed = try store.requests(filter: CallFilter(), limit: 10, cursor: nil).items
        #expect(Set(listed.map { "\($0.chatInput ?? "-") → \($0.output ?? "-")" }) == Set(calls.map { "\($0.chatInput!) → \($0.output!)" }))
        #expect(try store.found("Gutenberg") == [calls[0].id])
        #expect(try store.found("England") == [calls[1].id])
        #expect(try store.verifyChain().broken == nil)

        #expect(try await store.prune(before: 2_000) == 1)
        #expect(try store.found("Gutenberg").isEmpty)  // the index was told what it held for the pruned call
        #expect(try store.found("Caxton") == [calls[1].id])
        try await store.pool.write { db in try db.execute(sql: "INSERT INTO calls_fts (calls_fts) VALUES ('integrity-check')") }

        // The messages the text is read from are covered by the chain: pointing the third call's
        // reply node at another message (its output would read "Caxton.") is caught.
        let (second, third) = (calls[1].id, calls[2].id)
        try await store.pool.write { db in
            try db.execute(
                sql: """
                    UPDATE nodes SET message_id = (SELECT message_id FROM nodes WHERE id = (SELECT reply_node FROM calls WHERE id = ?))
                    WHERE id = (SELECT reply_node FROM calls WHERE id = ?)
                    """,
                arguments: [second, third])
            #expect(db.changesCount == 1)
        }
        #expect(try store.call(id: third)?.output == "Caxton.")
        #expect(try store.verifyChain().broken?.id == third)

        // The bits are covered too: clearing them (the call would read without its text) is caught.
        try await store.pool.write { db in
            try db.execute(sql: "UPDATE calls SET text_from_thread = 0 WHERE id = ?", arguments: [second])
        }
        #expect(try store.verifyChain().broken?.id == calls[1].id)
    }

    @Test func interleavedConversationsThreadApart() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let a1 = chatRecord(turns: ["Tell me a joke"], reply: "Why did the chicken…", key: "key-a")
        let b1 = chatRecord(system: "You are a poet.", turns: ["Tell me a joke"], reply: "Roses are red…", key: "key-a")
        let a2 = chatRecord(turns: ["Tell me a joke", "Why did the chicken…", "Another"], reply: "Knock knock.", key: "key-a")
        let b2 = chatRecord(
            system: "You are a poet.", turns: ["Tell me a joke", "Roses are red…", "Another"], reply: "Violets…", key: "key-a")
        let store = try await write([a1, b1, a2, b2], to: directory)
        #expect(try store.call(id: a2.id)?.sessionID == a1.id)
        #expect(try store.call(id: b2.id)?.sessionID == b1.id)
    }

    @Test func identicalFirstTurnsFromTwoUsersStayTwoSessions() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        // Same question, same (deterministic) answer, same key: nothing tells the users apart yet.
        let a1 = chatRecord(turns: ["Hi"], reply: "Hello!")
        let b1 = chatRecord(turns: ["Hi"], reply: "Hello!")
        let a2 = chatRecord(turns: ["Hi", "Hello!", "What is 2+2?"], reply: "4")
        let b2 = chatRecord(turns: ["Hi", "Hello!", "Name a color"], reply: "Blue")
        let store = try await write([a1, b1, a2, b2], to: directory)
        let sessions = try [a1, b1, a2, b2].map { try #require(try store.call(id: $0.id)?.sessionID) }
        #expect(sessions[0] != sessions[1])  // first turns never join anything
        #expect(sessions[2] != sessions[3])  // each second turn continues a different waiting session
        #expect(Set(sessions).count == 2)
    }

    @Test func differentKeysNeverShareASession() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let a1 = chatRecord(turns: ["Hi"], reply: "Hello!", key: "key-a")
        let b2 = chatRecord(turns: ["Hi", "Hello!", "Bye"], reply: "Bye!", key: "key-b")
        let store = try await write([a1, b2], to: directory)
        #expect(try store.call(id: b2.id)?.sessionID == b2.id)
    }

    @Test func anExplicitSessionIsKept() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let a1 = chatRecord(turns: ["Hi"], reply: "Hello!")
        let a2 = chatRecord(turns: ["Hi", "Hello!", "Bye"], reply: "Bye!", session: "my-session")
        let store = try await write([a1, a2], to: directory)
        #expect(try store.call(id: a2.id)?.sessionID == "my-session")
        #expect(try store.call(id: a2.id)?.sessionSource == .header)
    }
}
