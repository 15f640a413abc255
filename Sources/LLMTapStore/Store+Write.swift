import Foundation
import GRDB
import LLMTapCore

extension Store {
    /// A batch ready to write: values serialized and payloads compressed, so the
    /// Recorder can prepare the next batch while this one is being written.
    struct PreparedBatch: Sendable {
        var calls: [[DatabaseValue]]
        var payloads: [[DatabaseValue]?]
        var count: Int { calls.count }
    }

    static func prepare(_ batch: [CallRecord]) throws -> PreparedBatch {
        var prepared = PreparedBatch(calls: [], payloads: [])
        let compressor = try PayloadCodec.Compressor()
        prepared.calls.reserveCapacity(batch.count)
        prepared.payloads.reserveCapacity(batch.count)
        for record in batch {
            prepared.calls.append(values(record))
            if record.noLog {
                prepared.payloads.append(nil)
            } else {
                let compressed = try compressor.compress(record)
                prepared.payloads.append([
                    record.id.databaseValue, "zlib".databaseValue, compressed.request.databaseValue,
                    record.requestBody.count.databaseValue, compressed.response.databaseValue,
                    record.responseBody.count.databaseValue, record.responseContentEncoding.databaseValue,
                ])
            }
        }
        return prepared
    }

    /// Writes a prepared batch in one transaction; a call already present (a spool
    /// replayed twice) is left as it is.
    func write(_ batch: PreparedBatch) async throws {
        try await pool.write { db in
            let call = try db.cachedStatement(sql: Self.insertCall)
            let payload = try db.cachedStatement(sql: Self.insertPayload)
            for (values, payloadValues) in zip(batch.calls, batch.payloads) {
                try call.execute(arguments: StatementArguments(values))
                guard db.changesCount > 0, let payloadValues else { continue }
                try payload.execute(arguments: StatementArguments(payloadValues))
            }
        }
    }

    /// Prepares and writes a batch (spool replays, tests).
    func insert(_ batch: [CallRecord]) async throws {
        try await write(Self.prepare(batch))
    }

    static let callColumns = [
        "id", "created_at", "session_id", "session_source", "provider", "endpoint", "api_format",
        "key_fingerprint", "client_address", "tags", "model", "parameters", "context", "chat_input",
        "is_stream", "usage_injected", "no_log", "http_status", "output", "outputs", "tool_calls",
        "finish_reason", "response_model", "error_type", "error_message", "outcome", "input_tokens",
        "output_tokens", "total_tokens", "cached_tokens", "reasoning_tokens", "usage_source",
        "usage_repeated", "cost_nano_usd", "pricing_version", "latency_s", "ttft_s", "itl_s",
        "itl_p95_s", "itl_max_s", "tokens_per_second",
    ]

    static let insertCall =
        "INSERT OR IGNORE INTO calls (\(callColumns.joined(separator: ", "))) VALUES ("
        + Array(repeating: "?", count: callColumns.count).joined(separator: ", ") + ")"

    static let insertPayload = """
        INSERT OR IGNORE INTO payloads
        (call_id, encoding, request, request_size, response, response_size, response_content_encoding)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        """

    static func values(_ r: CallRecord) -> [DatabaseValue] {
        let u = r.usage
        let values: [(any DatabaseValueConvertible)?] = [
            r.id, r.createdAt, r.sessionID, r.sessionSource?.rawValue, r.provider, r.endpoint, r.apiFormat,
            r.keyFingerprint, r.clientAddress, JSONValue.object(r.tags.mapValues { .string($0) }).canonicalText,
            r.model, r.parameters?.canonicalText, r.context?.canonicalText, r.chatInput,
            r.isStream, r.usageInjected, r.noLog, r.httpStatus, r.output,
            r.outputs.map { JSONValue.array($0.map { .string($0) }).canonicalText }, r.toolCalls?.canonicalText,
            r.finishReason, r.responseModel, r.errorType, r.errorMessage, r.outcome.rawValue,
            u?.inputTokens, u?.outputTokens, u?.totalTokens, u?.cachedInputTokens, u?.reasoningTokens,
            u?.source.rawValue, r.usageRepeated, r.costNanoUSD, r.pricingVersion, r.latencyS,
            r.ttftS, r.itlS, r.itlP95S, r.itlMaxS, r.tokensPerSecond,
        ]
        return values.map { $0?.databaseValue ?? .null }
    }
}
