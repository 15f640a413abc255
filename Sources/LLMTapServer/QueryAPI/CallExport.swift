import Foundation
import LLMTapCore

/// `llmtap export` formats: JSONL (one call per line, the query API's detailed call shape)
/// and CSV (the facts, one row per call, RFC 4180 quoting).
public enum CallExport {
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
