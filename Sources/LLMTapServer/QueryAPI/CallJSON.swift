import LLMTapAdapters
import LLMTapCore
import LLMTapStore

/// The JSON shapes of the query API, also printed by the CLI's `--json`.
public enum APIJSON {
    static func dollars(_ nano: Int64?) -> JSONValue {
        guard let nano else { return .null }
        return .double(Double(nano) / 1e9)
    }

    static func number(_ value: Double?) -> JSONValue { value.map(JSONValue.double) ?? .null }
    static func integer(_ value: Int64?) -> JSONValue { value.map(JSONValue.int) ?? .null }
    static func integer(_ value: Int?) -> JSONValue { value.map { .int(Int64($0)) } ?? .null }
    static func string(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }

    /// One call in LLMstudio's per-call shape (`id, choices, created, model, object, usage,
    /// session_id, chat_input, chat_output, context, provider, timestamp, parameters, metrics`)
    /// plus llmtap's own facts. `detail` adds the context and parameters.
    public static func call(_ r: CallRecord, detail: Bool) -> JSONValue {
        let u = r.usage
        var message: [String: JSONValue] = ["role": .string("assistant"), "content": string(r.output)]
        message["tool_calls"] = r.toolCalls ?? .null
        var choices: [JSONValue] = [
            .object(["index": .int(0), "finish_reason": string(r.finishReason), "message": .object(message)])
        ]
        if let outputs = r.outputs, outputs.count > 1 {
            choices = outputs.enumerated().map { index, text in
                .object([
                    "index": .int(Int64(index)), "finish_reason": string(index == 0 ? r.finishReason : nil),
                    "message": .object(["role": .string("assistant"), "content": .string(text)]),
                ])
            }
        }
        var object: [String: JSONValue] = [
            "id": .string(r.id),
            "object": .string("chat.completion"),
            "created": .int(Int64(r.createdAt)),
            "timestamp": .double(r.createdAt),
            "model": string(r.responseModel ?? r.model),
            "requested_model": string(r.requestedModel ?? r.model),
            "provider": .string(r.provider),
            "endpoint": .string(r.endpoint),
            "api_format": .string(r.apiFormat),
            "session_id": string(r.sessionID),
            "session_source": string(r.sessionSource?.rawValue),
            "chat_input": string(r.chatInput),
            "chat_output": string(r.output),
            "choices": .array(choices),
            "usage": u.map { u in
                .object([
                    "prompt_tokens": integer(u.inputTokens), "completion_tokens": integer(u.outputTokens),
                    "total_tokens": integer(u.totalTokens),
                ])
            } ?? .null,
            "metrics": .object([
                "input_tokens": integer(u?.inputTokens),
                "output_tokens": integer(u?.outputTokens),
                "total_tokens": integer(u?.totalTokens),
                "cached_tokens": integer(u?.cachedInputTokens),
                "reasoning_tokens": integer(u?.reasoningTokens),
                "usage_source": string(u?.source.rawValue),
                "cost_usd": dollars(r.costNanoUSD),
                "cost_nano_usd": integer(r.costNanoUSD),
                "pricing_version": string(r.pricingVersion),
                "latency_s": .double(r.latencyS),
                "time_to_first_token_s": number(r.ttftS),
                "inter_token_latency_s": number(r.itlS),
                "inter_token_latency_p95_s": number(r.itlP95S),
                "inter_token_latency_max_s": number(r.itlMaxS),
                "tokens_per_second": number(r.tokensPerSecond),
            ]),
            "outcome": .string(r.outcome.rawValue),
            "http_status": integer(r.httpStatus),
            "is_stream": .bool(r.isStream),
            "error": r.errorType == nil && r.errorMessage == nil
                ? .null : .object(["type": string(r.errorType), "message": string(r.errorMessage)]),
            "tags": .object(r.tags.mapValues(JSONValue.string)),
            "key_fingerprint": string(r.keyFingerprint),
            "no_log": .bool(r.noLog),
            "usage_checks": .array(r.usageChecks.names.map(JSONValue.string)),
        ]
        if r.apiFormat == WireAPI.openAIEmbeddings.rawValue {
            object["input_count"] = integer(OpenAIEmbeddings.inputCount(r.context))
        }
        if detail {
            object["context"] = r.context ?? .null
            object["parameters"] = r.parameters ?? .null
        }
        return .object(object)
    }

    /// `GET /api/sessions`.
    public static func sessions(_ page: Page<SessionSummary>) -> JSONValue {
        .object(["sessions": .array(page.items.map { session($0) }), "next_cursor": string(page.nextCursor)])
    }

    /// `GET /api/sessions/{id}`: the summary and every call in order, in the per-call shape.
    public static func session(_ summary: SessionSummary, calls: [CallRecord]) -> JSONValue {
        var object = session(summary).objectValue!
        object["calls"] = .array(calls.map { call($0, detail: true) })
        return .object(object)
    }

    /// `GET /api/sessions/{id}` as bytes, each call's context taken as JSON text
    /// (`Store.sessionWithContextText`): the same document as `session(_:calls:)`.
    public static func session(_ summary: SessionSummary, calls: [CallRecord], contexts: [[UInt8]?]) -> [UInt8] {
        var out = session(summary).canonicalBytes
        out.removeLast()  // the summary's closing brace: the calls follow
        out += Array(#","calls":["#.utf8)
        for (n, record) in calls.enumerated() {
            if n > 0 { out.append(UInt8(ascii: ",")) }
            var members = call(record, detail: true).objectValue!
            members.removeValue(forKey: "context")
            out += Array(#"{"context":"#.utf8)
            out += contexts[n] ?? Array("null".utf8)
            out.append(UInt8(ascii: ","))
            out += JSONValue.object(members).canonicalBytes.dropFirst()
        }
        out += Array("]}".utf8)
        return out
    }

    /// `GET /api/cost`.
    public static func cost(_ report: CostReport, groupBy: String) -> JSONValue {
        .object([
            "group_by": .string(groupBy),
            "total_cost_usd": dollars(report.total.costNanoUSD),
            "input_tokens": .int(report.total.inputTokens),
            "output_tokens": .int(report.total.outputTokens),
            "requests": .int(Int64(report.total.requests)),
            "unpriced_requests": .int(Int64(report.total.unpricedRequests)),
            "groups": .array(report.groups.map { costGroup($0) }),
            "unpriced": .array(report.unpriced.map { costGroup($0, keyName: "model") }),
        ])
    }

    /// `GET /api/stats`.
    public static func stats(_ stats: [LatencyStats]) -> JSONValue {
        .object([
            "models": .array(
                stats.map { s in
                    .object([
                        "model": .string(s.model), "requests": .int(Int64(s.requests)),
                        "latency_s": percentiles(s.latency), "ttft_s": percentiles(s.ttft),
                        "inter_token_latency_s": percentiles(s.itl), "tokens_per_second": percentiles(s.tokensPerSecond),
                    ])
                })
        ])
    }

    static func session(_ s: SessionSummary) -> JSONValue {
        .object([
            "id": .string(s.id),
            "first_at": .double(s.firstAt),
            "last_at": .double(s.lastAt),
            "requests": .int(Int64(s.requests)),
            "input_tokens": .int(s.inputTokens),
            "output_tokens": .int(s.outputTokens),
            "total_tokens": .int(s.inputTokens + s.outputTokens),
            "cost_usd": dollars(s.costNanoUSD),
            "unpriced_requests": .int(Int64(s.unpricedRequests)),
            "models": .array(s.models.map(JSONValue.string)),
        ])
    }

    static func costGroup(_ g: CostGroup, keyName: String = "key") -> JSONValue {
        var object: [String: JSONValue] = [
            keyName: string(g.key),
            "requests": .int(Int64(g.requests)),
            "input_tokens": .int(g.inputTokens),
            "output_tokens": .int(g.outputTokens),
            "cost_usd": dollars(g.costNanoUSD),
            "unpriced_requests": .int(Int64(g.unpricedRequests)),
        ]
        if !g.series.isEmpty { object["series"] = .array(g.series.map { costGroup($0) }) }
        return .object(object)
    }

    static func percentiles(_ p: Percentiles?) -> JSONValue {
        guard let p else { return .null }
        return .object(["p50": .double(p.p50), "p90": .double(p.p90), "p99": .double(p.p99)])
    }
}
