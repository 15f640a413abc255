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
            if let payload = try Row.fetchOne(db, sql: "SELECT * FROM payloads WHERE call_id = ?", arguments: [id]) {
                record.requestBody = try PayloadCodec.decompress(payload["request"], size: payload["request_size"])
                record.responseBody = try PayloadCodec.decompress(payload["response"], size: payload["response_size"])
                record.responseContentEncoding = payload["response_content_encoding"]
            }
            return record
        }
    }

    /// Calls in creation order, newest last (tests and the CLI; the query API pages).
    public func calls(limit: Int = 1000) throws -> [CallRecord] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM calls ORDER BY id LIMIT ?", arguments: [limit]).map {
                try Self.record(from: $0, db: db)
            }
        }
    }

    public func callCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM calls") ?? 0 }
    }

    static func record(from row: Row, db: Database) throws -> CallRecord {
        var r = CallRecord(
            id: row["id"], createdAt: row["created_at"], provider: row["provider"],
            endpoint: row["endpoint"], apiFormat: row["api_format"],
            outcome: CallRecord.Outcome(rawValue: row["outcome"]) ?? .ok, latencyS: row["latency_s"]
        )
        r.sessionID = row["session_id"]
        r.sessionSource = (row["session_source"] as String?).flatMap(CallRecord.SessionSource.init)
        r.keyFingerprint = row["key_fingerprint"]
        r.clientAddress = row["client_address"]
        r.tags = json(row["tags"])?.objectValue?.compactMapValues(\.stringValue) ?? [:]
        r.model = row["model"]
        r.parameters = json(row["parameters"])
        r.context = json(row["context"])
        if r.context == nil, let node: Int64 = row["context_node"] { r.context = try context(endingAt: node, db: db) }
        r.chatInput = row["chat_input"]
        r.isStream = row["is_stream"]
        r.usageInjected = row["usage_injected"]
        r.noLog = row["no_log"]
        r.httpStatus = row["http_status"]
        r.output = row["output"]
        r.outputs = json(row["outputs"])?.arrayValue?.compactMap(\.stringValue)
        r.toolCalls = json(row["tool_calls"])
        r.finishReason = row["finish_reason"]
        r.responseModel = row["response_model"]
        r.requestedModel = row["requested_model"]
        r.errorType = row["error_type"]
        r.errorMessage = row["error_message"]
        if let source = (row["usage_source"] as String?).flatMap(Usage.Source.init) {
            r.usage = Usage(
                inputTokens: row["input_tokens"], outputTokens: row["output_tokens"],
                totalTokens: row["total_tokens"], cachedInputTokens: row["cached_tokens"],
                cacheWriteInputTokens: row["cache_write_tokens"],
                reasoningTokens: row["reasoning_tokens"], source: source
            )
        }
        r.usageRepeated = row["usage_repeated"]
        r.usageChecks = UsageChecks(rawValue: row["usage_checks"])
        r.costNanoUSD = row["cost_nano_usd"]
        r.pricingVersion = row["pricing_version"]
        r.ttftS = row["ttft_s"]
        r.itlS = row["itl_s"]
        r.itlP95S = row["itl_p95_s"]
        r.itlMaxS = row["itl_max_s"]
        r.tokensPerSecond = row["tokens_per_second"]
        r.serverMetrics = json(row["server_metrics"])
        return r
    }

    /// The messages on the path from the root to `node`, in order.
    static func context(endingAt node: Int64, db: Database) throws -> JSONValue {
        let statement = try db.cachedStatement(
            sql: """
                WITH RECURSIVE path (id, parent_id, message_id, depth) AS (
                  SELECT id, parent_id, message_id, 0 FROM nodes WHERE id = ?
                  UNION ALL
                  SELECT n.id, n.parent_id, n.message_id, path.depth + 1 FROM nodes n JOIN path ON n.id = path.parent_id
                )
                SELECT m.message FROM path JOIN messages m ON m.id = path.message_id ORDER BY path.depth DESC
                """)
        return .array(try String.fetchAll(statement, arguments: [node]).compactMap { json($0) })
    }

    static func json(_ text: String?) -> JSONValue? {
        text.flatMap { JSONValue.parse(Array($0.utf8)) }
    }
}
