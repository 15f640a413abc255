import Foundation
import GRDB
import LLMTapCore

extension Store {
    /// One call with its payloads decompressed to the exact bytes received.
    public func call(id: String) throws -> CallRecord? {
        try pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM calls WHERE id = ?", arguments: [id]) else {
                return nil
            }
            var record = try Self.record(from: row, db: db)
            try Self.loadPayload(into: &record, db: db)
            return record
        }
    }

    /// Fills in a call's request and response bytes, decompressed, if it has them.
    static func loadPayload(into record: inout CallRecord, db: Database) throws {
        let statement = try db.cachedStatement(
            sql: "SELECT * FROM payloads WHERE call_rowid = (SELECT rowid FROM calls WHERE id = ?)")
        guard let payload = try Row.fetchOne(statement, arguments: [record.id]) else { return }
        guard (payload["digest"] as Data?) == nil else { return }  // dropped by payload retention
        let requestSize: Int = payload["request_size"]
        if let format = payload["request_format"] as Int?, format > 0 {
            let ids = try (payload["fragment_ids"] as Data?).map { try PayloadFragments.decode(ids: Array($0), format: Int64(format)) } ?? []
            record.requestBody = try Self.assemble(
                PayloadCodec.decompress(payload["request"], size: nil), fragmentIDs: ids, size: requestSize, db: db)
        } else {
            record.requestBody = try PayloadCodec.decompress(payload["request"], size: requestSize)
        }
        record.responseBody = try PayloadCodec.decompress(payload["response"], size: payload["response_size"])
        record.responseContentEncoding = payload["response_content_encoding"]
    }

    /// A request body from its template and the fragments it names (format 1) or its
    /// `fragmentIDs` (format 2).
    static func assemble(_ template: [UInt8], fragmentIDs: [Int64], size: Int, db: Database) throws -> [UInt8] {
        // Format 1 was written before `fragment_keys` existed: its fragments have their keys there.
        // Newer rows (above the merge point) are a range of the table to look through.
        let byHash = try db.cachedStatement(
            sql: """
                SELECT bytes, size, message_id FROM fragments WHERE id = coalesce(
                  (SELECT id FROM fragment_keys WHERE hash = ?1),
                  (SELECT id FROM fragments WHERE hash = ?1
                     AND id > (SELECT merged_through FROM content_keys WHERE name = 'fragments')))
                """)
        let byID = try db.cachedStatement(sql: "SELECT bytes, size, message_id FROM fragments WHERE id = ?")
        var body: [UInt8] = []
        body.reserveCapacity(size)
        var ids = fragmentIDs.makeIterator()
        for piece in try PayloadFragments.pieces(template) {
            let row: Row?
            switch piece {
            case .literal(let bytes):
                body.append(contentsOf: bytes)
                continue
            case .fragment(let hash):
                row = try Row.fetchOne(byHash, arguments: [hash])
            case .next:
                guard let id = ids.next() else { throw PayloadCodec.Failure(description: "the template names more fragments than listed") }
                row = try Row.fetchOne(byID, arguments: [id])
            }
            guard let row else { throw PayloadCodec.Failure(description: "a request fragment is missing") }
            body.append(contentsOf: try fragmentBytes(row, db: db))
        }
        guard body.count == size else { throw PayloadCodec.Failure(description: "request is \(body.count) bytes, \(size) recorded") }
        return body
    }

    /// A `fragments` row's exact bytes (`bytes`, `size`, `message_id`): decompressed, against
    /// its message when it was compressed against one.
    static func fragmentBytes(_ row: Row, db: Database) throws -> [UInt8] {
        let against = try (row["message_id"] as Int64?).map { try normalizedMessage($0, db: db) }
        return try PayloadCodec.decompress(row["bytes"], size: row["size"], against: against)
    }

    /// A stored message's normalized canonical JSON: the bytes its hash is of, and what a
    /// fragment that is this message was compressed against.
    static func normalizedMessage(_ id: Int64, db: Database) throws -> [UInt8] {
        let read = try db.cachedStatement(sql: "SELECT message FROM messages WHERE id = ?")
        guard let stored = try Data.fetchOne(read, arguments: [id]),
            let message = JSONValue.parse(try PayloadCodec.decompress(stored, size: nil))
        else { throw PayloadCodec.Failure(description: "message \(id), which a request fragment needs, is missing") }
        return Conversation.normalizedCanonicalBytes(message)
    }

    /// Calls in creation order, newest last (tests and the CLI; the query API pages).
    public func calls(limit: Int = 1000) throws -> [CallRecord] {
        try pool.read { db in
            try Self.records(Row.fetchAll(db, sql: "SELECT * FROM calls ORDER BY id LIMIT ?", arguments: [limit]), db: db)
        }
    }

    public func callCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM calls") ?? 0 }
    }

    /// The calls of `rows`, their contexts read through one `ContextReader`.
    static func records(_ rows: [Row], db: Database) throws -> [CallRecord] {
        guard let first = rows.first else { return [] }
        let contexts = ContextReader()
        let columns = CallColumns(first)
        return try rows.map { try record(from: $0, db: db, contexts: contexts, columns: columns) }
    }

    /// - Parameter contexts: shared by the calls of one read, so contexts that share messages
    ///   (a session's turns) read and parse each message once.
    static func record(
        from row: Row, db: Database, contexts: ContextReader = ContextReader(), columns: CallColumns? = nil,
        readsThreadedContext: Bool = true
    ) throws -> CallRecord {
        let c = columns ?? CallColumns(row)
        var r = CallRecord(
            id: row[c["id"]], createdAt: row[c["created_at"]], provider: row[c["provider"]],
            endpoint: row[c["endpoint"]], apiFormat: row[c["api_format"]],
            outcome: CallRecord.Outcome(rawValue: row[c["outcome"]]) ?? .ok, latencyS: row[c["latency_s"]]
        )
        r.sessionID = row[c["session_id"]]
        r.sessionSource = (row[c["session_source"]] as String?).flatMap(CallRecord.SessionSource.init)
        r.keyFingerprint = row[c["key_fingerprint"]]
        r.clientAddress = row[c["client_address"]]
        r.tags = json(row[c["tags"]])?.objectValue?.compactMapValues(\.stringValue) ?? [:]
        r.model = row[c["model"]]
        r.parameters = json(row[c["parameters"]])
        r.context = json(row[c["context"]])
        if readsThreadedContext, r.context == nil, let node: Int64 = row[c["context_node"]] {
            r.context = try contexts.context(endingAt: node, db: db)
        }
        (r.chatInput, r.output) = try ThreadText.texts(
            stored: (row[c["chat_input"]], row[c["output"]]), bits: row[c["text_from_thread"]] ?? 0,
            contextNode: row[c["context_node"]], replyNode: row[c["reply_node"]], reader: contexts, db: db)
        r.isStream = row[c["is_stream"]]
        r.usageInjected = row[c["usage_injected"]]
        r.noLog = row[c["no_log"]]
        r.httpStatus = row[c["http_status"]]
        r.outputs = json(row[c["outputs"]])?.arrayValue?.compactMap(\.stringValue)
        r.toolCalls = json(row[c["tool_calls"]])
        r.finishReason = row[c["finish_reason"]]
        r.responseModel = row[c["response_model"]]
        r.requestedModel = row[c["requested_model"]]
        r.errorType = row[c["error_type"]]
        r.errorMessage = row[c["error_message"]]
        if let source = (row[c["usage_source"]] as String?).flatMap(Usage.Source.init) {
            r.usage = Usage(
                inputTokens: row[c["input_tokens"]], outputTokens: row[c["output_tokens"]],
                totalTokens: row[c["total_tokens"]], cachedInputTokens: row[c["cached_tokens"]],
                cacheWriteInputTokens: row[c["cache_write_tokens"]],
                reasoningTokens: row[c["reasoning_tokens"]], source: source
            )
        }
        r.usageRepeated = row[c["usage_repeated"]]
        r.usageChecks = UsageChecks(rawValue: row[c["usage_checks"]])
        r.costNanoUSD = row[c["cost_nano_usd"]]
        r.pricingVersion = row[c["pricing_version"]]
        r.ttftS = row[c["ttft_s"]]
        r.itlS = row[c["itl_s"]]
        r.itlP95S = row[c["itl_p95_s"]]
        r.itlMaxS = row[c["itl_max_s"]]
        r.tokensPerSecond = row[c["tokens_per_second"]]
        r.serverMetrics = json(row[c["server_metrics"]])
        return r
    }

    static func json(_ text: String?) -> JSONValue? {
        text.flatMap { JSONValue.parse(Array($0.utf8)) }
    }
}

/// Column positions of a `calls` row, looked up once per query: GRDB finds a column by
/// name with a case-insensitive scan of every column, which for a page of calls costs
/// more than reading them.
struct CallColumns {
    private let positions: [String: Int]

    init(_ row: Row) {
        var positions: [String: Int] = [:]
        for (index, name) in row.columnNames.enumerated() where positions[name] == nil { positions[name] = index }
        self.positions = positions
    }

    /// The position of `name`; a name the query did not select is a programming error.
    subscript(_ name: String) -> Int { positions[name]! }
}

/// Rebuilds contexts from the message tree (`nodes` → `messages`). Each node is read and
/// each message parsed once per reader, and the path to every node on the way is kept:
/// the turns of a conversation share all but their last messages, so a session of n turns
/// costs O(n) reads instead of O(n²).
final class ContextReader {
    private var paths: [Int64: [JSONValue]] = [:]
    private var messages: [Int64: JSONValue] = [:]

    init() {}

    /// The messages on the path from the root to `node`, in order.
    func context(endingAt node: Int64, db: Database) throws -> JSONValue {
        let readNode = try db.cachedStatement(sql: "SELECT parent_id, message_id FROM nodes WHERE id = ?")
        var unresolved: [(node: Int64, message: Int64)] = []
        var current = node
        while current != 0, paths[current] == nil {
            guard let row = try Row.fetchOne(readNode, arguments: [current]) else { break }
            unresolved.append((current, row["message_id"]))
            current = row["parent_id"]
        }
        var path = paths[current] ?? []
        for (id, messageID) in unresolved.reversed() {
            path.append(try message(messageID, db: db))
            paths[id] = path
        }
        return .array(path)
    }

    private var texts: [Int64: [UInt8]] = [:]

    /// The same context as JSON text, put together from the messages' stored text without
    /// parsing or encoding them (each message is stored as canonical JSON).
    func contextText(endingAt node: Int64, db: Database) throws -> [UInt8] {
        let readNode = try db.cachedStatement(sql: "SELECT parent_id, message_id FROM nodes WHERE id = ?")
        let readMessage = try db.cachedStatement(sql: "SELECT message FROM messages WHERE id = ?")
        var unresolved: [(node: Int64, message: Int64)] = []
        var current = node
        while current != 0, texts[current] == nil {
            guard let row = try Row.fetchOne(readNode, arguments: [current]) else { break }
            unresolved.append((current, row["message_id"]))
            current = row["parent_id"]
        }
        var text = texts[current] ?? []
        for (id, messageID) in unresolved.reversed() {
            if !text.isEmpty { text.append(UInt8(ascii: ",")) }
            text += try Self.messageText(readMessage, messageID)
            texts[id] = text
        }
        return [UInt8(ascii: "[")] + text + [UInt8(ascii: "]")]
    }

    /// A node's message and its parent (0 at a root); nil for a missing node.
    func node(_ id: Int64, db: Database) throws -> (message: JSONValue, parent: Int64)? {
        let readNode = try db.cachedStatement(sql: "SELECT parent_id, message_id FROM nodes WHERE id = ?")
        guard let row = try Row.fetchOne(readNode, arguments: [id]) else { return nil }
        return (try message(row["message_id"], db: db), row["parent_id"])
    }

    private func message(_ id: Int64, db: Database) throws -> JSONValue {
        if let known = messages[id] { return known }
        let text = try Self.messageText(db.cachedStatement(sql: "SELECT message FROM messages WHERE id = ?"), id)
        let message = JSONValue.parse(text) ?? .null
        messages[id] = message
        return message
    }

    /// A stored message's canonical JSON (`null` for a missing one); stored compressed.
    static func messageText(_ read: Statement, _ id: Int64) throws -> [UInt8] {
        guard let stored = try Data.fetchOne(read, arguments: [id]) else { return Array("null".utf8) }
        return try PayloadCodec.decompress(stored, size: nil)
    }
}
