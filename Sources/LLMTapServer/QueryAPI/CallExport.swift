import Foundation
import LLMTapCore

/// `llmtap export` formats: JSONL (one call per line, the query API's detailed call shape),
/// CSV (the facts, one row per call, RFC 4180 quoting), and backup (one whole record per
/// line, payload bytes in base64: what `llmtap import` restores, losing nothing).
public enum CallExport {
    /// A call as one line of a backup: every field of the record, the raw request and
    /// response bytes as `request_base64` / `response_base64`, keys sorted.
    public static func backupLine(_ record: CallRecord) throws -> String {
        var bare = record
        bare.requestBody = []
        bare.responseBody = []
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var members = JSONValue.parse(Array(try encoder.encode(bare)))?.objectValue else {
            throw BackupError("a record did not encode as a JSON object")
        }
        members.removeValue(forKey: "requestBody")
        members.removeValue(forKey: "responseBody")
        // JSON fields as llmtap writes them: JSONEncoder would write 20.0 as 20, which reads back as an integer.
        for (key, value) in jsonFields(record) { members[key] = value ?? .null }
        members["request_base64"] = .string(Data(record.requestBody).base64EncodedString())
        members["response_base64"] = .string(Data(record.responseBody).base64EncodedString())
        return JSONValue.object(members).canonicalText
    }

    /// The record of one backup line.
    public static func record(backupLine line: some Collection<UInt8>) throws -> CallRecord {
        guard var members = JSONValue.parse(Array(line))?.objectValue else { throw BackupError("not a JSON object") }
        guard case .string(let request)? = members.removeValue(forKey: "request_base64"),
            case .string(let response)? = members.removeValue(forKey: "response_base64"),
            let requestBytes = Data(base64Encoded: request), let responseBytes = Data(base64Encoded: response)
        else { throw BackupError("request_base64 and response_base64 are required") }
        members["requestBody"] = .array([])
        members["responseBody"] = .array([])
        var record = try JSONDecoder().decode(CallRecord.self, from: Data(JSONValue.object(members).canonicalBytes))
        record.parameters = members["parameters"].flatMap { $0.isNull ? nil : $0 }
        record.context = members["context"].flatMap { $0.isNull ? nil : $0 }
        record.toolCalls = members["toolCalls"].flatMap { $0.isNull ? nil : $0 }
        record.serverMetrics = members["serverMetrics"].flatMap { $0.isNull ? nil : $0 }
        record.requestBody = Array(requestBytes)
        record.responseBody = Array(responseBytes)
        return record
    }

    /// The record's free-form JSON fields, by their key in the record's Codable form.
    static func jsonFields(_ r: CallRecord) -> [(String, JSONValue?)] {
        [("parameters", r.parameters), ("context", r.context), ("toolCalls", r.toolCalls), ("serverMetrics", r.serverMetrics)]
    }

    public struct BackupError: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    public static func jsonLine(_ record: CallRecord) -> String {
        APIJSON.call(record, detail: true).canonicalText
    }

    public static let csvColumns = [
        "id", "created_at", "session_id", "provider", "endpoint", "model", "response_model", "outcome", "http_status",
        "is_stream", "input_tokens", "output_tokens", "cached_tokens", "cost_usd", "latency_s", "ttft_s",
        "tokens_per_second", "key_fingerprint", "chat_input", "output",
    ]

    public static var csvHeader: String { csvColumns.joined(separator: ",") }

    public static func csvRow(_ r: CallRecord) -> String {
        let u = r.usage
        let fields: [String?] = [
            r.id, Timestamps.rfc3339(r.createdAt), r.sessionID, r.provider, r.endpoint, r.model, r.responseModel,
            r.outcome.rawValue, r.httpStatus.map(String.init), r.isStream ? "true" : "false",
            u?.inputTokens.map(String.init), u?.outputTokens.map(String.init), u?.cachedInputTokens.map(String.init),
            r.costNanoUSD.map { String(Double($0) / 1e9) }, String(r.latencyS), r.ttftS.map { String($0) },
            r.tokensPerSecond.map { String($0) }, r.keyFingerprint, r.chatInput, r.output,
        ]
        return fields.map { quote($0 ?? "") }.joined(separator: ",")
    }

    static func quote(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
