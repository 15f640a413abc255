import Foundation
import GRDB
import LLMTapCore

extension Store {
    /// Recomputes every matching call's cost from its stored usage with `pricing` (in
    /// batches, oldest first): the same table always gives the same costs. Calls the table
    /// does not price get cost NULL and the `cost_unknown` check.
    /// - Returns: how many calls were looked at and how many changed cost.
    @discardableResult
    public func reprice(with pricing: PricingTable, filter: CallFilter = CallFilter(), batchSize: Int = 1000) async throws
        -> (calls: Int, changed: Int)
    {
        let (clause, arguments) = filter.sql()
        var after = ""
        var calls = 0
        var changed = 0
        while true {
            let cursor = after
            let result = try await pool.write { db -> (count: Int, changed: Int, last: String?) in
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT id, provider, model, response_model, input_tokens, output_tokens, cached_tokens,
                          cache_write_tokens, cost_nano_usd, usage_checks, usage_source
                        FROM calls WHERE \(clause) AND calls.id > ? ORDER BY calls.id LIMIT ?
                        """,
                    arguments: arguments + [cursor, batchSize])
                let update = try db.cachedStatement(
                    sql: "UPDATE calls SET cost_nano_usd = ?, pricing_version = ?, usage_checks = ? WHERE id = ?")
                var changed = 0
                for row in rows {
                    let usage = (row["usage_source"] as String?).map { source in
                        Usage(
                            inputTokens: row["input_tokens"], outputTokens: row["output_tokens"],
                            cachedInputTokens: row["cached_tokens"], cacheWriteInputTokens: row["cache_write_tokens"],
                            source: Usage.Source(rawValue: source) ?? .upstream)
                    }
                    let model: String? = row["response_model"] ?? row["model"]
                    let cost = pricing.cost(provider: row["provider"], model: model, usage: usage)?.rawValue
                    var checks = UsageChecks(rawValue: row["usage_checks"])
                    if cost == nil { checks.insert(.costUnknown) } else { checks.remove(.costUnknown) }
                    if cost != row["cost_nano_usd"] as Int64? { changed += 1 }
                    try update.execute(arguments: [cost, cost == nil ? nil : pricing.version, checks.rawValue, row["id"] as String])
                }
                return (rows.count, changed, rows.last?["id"])
            }
            calls += result.count
            changed += result.changed
            guard result.count == batchSize, let last = result.last else { return (calls, changed) }
            after = last
        }
    }
}
