import Foundation
import GRDB
import LLMTapCore

/// Which calls a query looks at. Every field is optional; set ones are ANDed.
public struct CallFilter: Sendable {
    /// Unix seconds, inclusive / exclusive.
    public var from: Double?
    public var to: Double?
    public var model: String?
    public var provider: String?
    /// `key` alone (any value) or `key` with `value`.
    public var tags: [(key: String, value: String?)] = []
    /// Full-text search over chat input and output.
    public var text: String?
    public var sessionID: String?
    public var status: Int?
    public var outcome: String?
    /// A key fingerprint.
    public var apiKey: String?
    /// Calls with all of these usage checks.
    public var checks: UsageChecks = []

    public init() {}

    /// Only time, provider and key: what the hourly cost rollup can answer.
    var onlyTimeProviderKey: Bool {
        model == nil && tags.isEmpty && text == nil && sessionID == nil && status == nil && outcome == nil
            && checks.isEmpty
    }

    var isEmpty: Bool { onlyTimeProviderKey && from == nil && to == nil && provider == nil && apiKey == nil }

    func sql() -> (clause: String, arguments: StatementArguments) {
        var clauses: [String] = []
        var arguments: [(any DatabaseValueConvertible)?] = []
        if let from { clauses.append("calls.created_at >= ?"); arguments.append(from) }
        if let to { clauses.append("calls.created_at < ?"); arguments.append(to) }
        if let model { clauses.append("(calls.model = ? OR calls.response_model = ?)"); arguments += [model, model] }
        if let provider { clauses.append("calls.provider = ?"); arguments.append(provider) }
        for tag in tags {
            if let value = tag.value {
                clauses.append("EXISTS (SELECT 1 FROM tags t WHERE t.call_id = calls.id AND t.key = ? AND t.value = ?)")
                arguments += [tag.key, value]
            } else {
                clauses.append("EXISTS (SELECT 1 FROM tags t WHERE t.call_id = calls.id AND t.key = ?)")
                arguments.append(tag.key)
            }
        }
        // Text of only white space (a no-break space, say) has no word to search for: no filter.
        if let text, case let query = Self.ftsQuery(text), !query.isEmpty {
            clauses.append("calls.rowid IN (SELECT rowid FROM calls_fts WHERE calls_fts MATCH ?)")
            arguments.append(query)
        }
        if let sessionID { clauses.append("calls.session_id = ?"); arguments.append(sessionID) }
        if let status { clauses.append("calls.http_status = ?"); arguments.append(status) }
        if let outcome { clauses.append("calls.outcome = ?"); arguments.append(outcome) }
        if let apiKey { clauses.append("calls.key_fingerprint = ?"); arguments.append(apiKey) }
        if !checks.isEmpty { clauses.append("(calls.usage_checks & ?) = ?"); arguments += [checks.rawValue, checks.rawValue] }
        return (clauses.isEmpty ? "1" : clauses.joined(separator: " AND "), StatementArguments(arguments))
    }

    /// The search index's columns and options: contentless (the text is read from the call and
    /// its messages), and terms only — no positions (`detail = none`), no column sizes.
    static let searchColumns = "chat_input, output, content = '', detail = none, columnsize = 0"

    /// Each word of the user's text as quoted FTS5 terms (all must match), so no input is
    /// ever FTS5 syntax. The index keeps no term positions, so a word is cut where the
    /// index's tokenizer (unicode61: letters, numbers and private-use characters make words)
    /// cuts it and each part is a term of its own: `rate-limit` finds calls holding both
    /// `rate` and `limit`, anywhere in their text. The tokenizer knows Unicode 6.1: a letter
    /// assigned later cuts words there, so it cuts them here too (else one quoted term would
    /// be two tokens to FTS5, a phrase, which an index without positions refuses).
    static func ftsQuery(_ text: String) -> String {
        var terms: [String] = []
        var term = String.UnicodeScalarView()
        func flush() {
            if !term.isEmpty { terms.append("\"" + String(term) + "\"") }
            term = String.UnicodeScalarView()
        }
        for scalar in text.unicodeScalars {
            guard let age = scalar.properties.age, age.major < 6 || (age.major == 6 && age.minor <= 1) else {
                flush()
                continue
            }
            switch scalar.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
                .decimalNumber, .letterNumber, .otherNumber, .privateUse:
                term.append(scalar)
            default:
                flush()
            }
        }
        flush()
        return terms.joined(separator: " ")
    }
}

/// A page of results and the opaque cursor of the next page (nil on the last one).
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    public var nextCursor: String?
}

public struct SessionSummary: Sendable, Equatable {
    public var id: String
    public var firstAt: Double
    public var lastAt: Double
    public var requests: Int
    public var inputTokens: Int64
    public var outputTokens: Int64
    /// Sum of the priced calls; `unpricedRequests` says how many calls it leaves out.
    public var costNanoUSD: Int64
    public var unpricedRequests: Int
    public var models: [String]
}

public struct CostGroup: Sendable, Equatable {
    public var key: String?
    public var requests: Int
    public var inputTokens: Int64
    public var outputTokens: Int64
    public var costNanoUSD: Int64
    public var unpricedRequests: Int
    /// The group split by a second grouping (`costSeries`), largest cost first.
    public var series: [CostGroup] = []

    /// Counts `part` in this group and lists it in its series.
    mutating func add(_ part: CostGroup) {
        requests += part.requests
        inputTokens += part.inputTokens
        outputTokens += part.outputTokens
        costNanoUSD += part.costNanoUSD
        unpricedRequests += part.unpricedRequests
        series.append(part)
    }
}

public struct CostReport: Sendable, Equatable {
    public var total: CostGroup
    public var groups: [CostGroup]
    /// Calls no price covers, by model and provider: never counted as free.
    public var unpriced: [CostGroup]
}

public struct LatencyStats: Sendable, Equatable {
    public var model: String
    public var requests: Int
    public var latency: Percentiles?
    public var ttft: Percentiles?
    public var itl: Percentiles?
    public var tokensPerSecond: Percentiles?
}

public struct Percentiles: Sendable, Equatable {
    public var p50: Double
    public var p90: Double
    public var p99: Double

    /// Nearest-rank percentiles from a sketch (within 1 %); nil for no values.
    init?(_ sketch: Sketch) {
        guard let p50 = sketch.quantile(0.5), let p90 = sketch.quantile(0.9), let p99 = sketch.quantile(0.99) else {
            return nil
        }
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
    }
}

public enum CostGrouping: Sendable, Equatable {
    case model, provider, day, hour, session, apiKey
    case tag(String)

    /// `model`, `provider`, `day`, `hour`, `session`, `api_key` or `tag:<key>`.
    public init?(_ text: String) {
        switch text {
        case "model": self = .model
        case "provider": self = .provider
        case "day": self = .day
        case "hour": self = .hour
        case "session": self = .session
        case "api_key": self = .apiKey
        default:
            guard text.hasPrefix("tag:"), text.count > 4 else { return nil }
            self = .tag(String(text.dropFirst(4)))
        }
    }
}

extension Store {
    public static let maximumPageSize = 500

    /// Sessions with at least one call matching `filter`, most recently active first.
    public func sessions(filter: CallFilter, limit: Int, cursor: String?) throws -> Page<SessionSummary> {
        if filter.isEmpty { return try allSessions(limit: limit, cursor: cursor) }
        let (clause, arguments) = filter.sql()
        let sql = """
            \(Self.sessionSummarySelect)
            WHERE session_id IN (SELECT session_id FROM calls WHERE session_id IS NOT NULL AND \(clause))
            GROUP BY session_id
            """
        return try sessionPage(sql, arguments, after: "HAVING", id: "session_id", limit: limit, cursor: cursor)
    }

    /// Every session, from the `sessions` sums (an index walk, however many calls there are).
    private func allSessions(limit: Int, cursor: String?) throws -> Page<SessionSummary> {
        let sql = """
            SELECT id AS session_id, first_at, last_at, requests, input_tokens, output_tokens, cost_nano_usd AS cost,
              unpriced, models
            FROM sessions
            """
        return try sessionPage(sql, [], after: "WHERE", id: "id", limit: limit, cursor: cursor)
    }

    /// A page of the session summaries `sql` selects, most recently active first, after `cursor`
    /// (keyset on last activity and id). `after` is the clause that filters its rows (`WHERE`,
    /// or `HAVING` for a grouped query), `id` the column of the session id.
    private func sessionPage(
        _ sql: String, _ arguments: StatementArguments, after: String, id: String, limit: Int, cursor: String?
    ) throws -> Page<SessionSummary> {
        var sql = sql
        var arguments = arguments
        if let cursor {
            guard let (lastAt, lastID) = Self.decodeCursor(cursor), let at = Double(lastAt) else { throw QueryError.badCursor }
            sql += " \(after) last_at < ? OR (last_at = ? AND \(id) < ?)"
            arguments += [at, at, lastID]
        }
        sql += " ORDER BY last_at DESC, \(id) DESC LIMIT ?"
        arguments += [limit + 1]
        let rows = try pool.read { db in try Row.fetchAll(db, sql: sql, arguments: arguments) }
        let items = rows.prefix(limit).map(Self.sessionSummary)
        let next = rows.count > limit ? items.last.map { Self.encodeCursor(String($0.lastAt), $0.id) } : nil
        return Page(items: Array(items), nextCursor: next)
    }

    /// One session: its summary and its calls in order (payloads left out).
    public func session(id: String) throws -> (summary: SessionSummary, calls: [CallRecord])? {
        try pool.read { db in
            guard let summary = try Self.sessionSummary(id: id, db: db) else { return nil }
            let calls = try Self.records(
                Row.fetchAll(db, sql: "SELECT * FROM calls WHERE session_id = ? ORDER BY created_at, id", arguments: [id]),
                db: db)
            return (summary, calls)
        }
    }

    /// One session for a JSON answer: as `session(id:)`, with each call's context as JSON text
    /// (in `contexts`, the calls' `context` left nil) put together from the stored messages —
    /// a long conversation repeats its messages in every turn's context, and this writes
    /// them without parsing and re-encoding each repetition.
    public func sessionWithContextText(id: String) throws
        -> (summary: SessionSummary, calls: [CallRecord], contexts: [[UInt8]?])?
    {
        try pool.read { db in
            guard let summary = try Self.sessionSummary(id: id, db: db) else { return nil }
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM calls WHERE session_id = ? ORDER BY created_at, id", arguments: [id])
            guard let first = rows.first else { return (summary, [], []) }
            let columns = CallColumns(first)
            let reader = ContextReader()
            var calls: [CallRecord] = []
            var contexts: [[UInt8]?] = []
            for row in rows {
                var call = try Self.record(from: row, db: db, contexts: reader, columns: columns, readsThreadedContext: false)
                if call.context == nil, let node: Int64 = row[columns["context_node"]] {
                    contexts.append(try reader.contextText(endingAt: node, db: db))
                } else {
                    contexts.append(call.context?.canonicalBytes)
                }
                call.context = nil
                calls.append(call)
            }
            return (summary, calls, contexts)
        }
    }

    static func sessionSummary(id: String, db: Database) throws -> SessionSummary? {
        try Row.fetchOne(
            db,
            sql: """
                SELECT id AS session_id, first_at, last_at, requests, input_tokens, output_tokens,
                  cost_nano_usd AS cost, unpriced, models
                FROM sessions WHERE id = ?
                """, arguments: [id]
        ).map(sessionSummary)
    }

    /// Calls matching `filter`, newest first (payloads left out).
    public func requests(filter: CallFilter, limit: Int, cursor: String?) throws -> Page<CallRecord> {
        let (clause, arguments) = filter.sql()
        var sql = "SELECT * FROM calls WHERE \(clause)"
        var all = arguments
        if let cursor {
            guard let (id, _) = Self.decodeCursor(cursor) else { throw QueryError.badCursor }
            sql += " AND calls.id < ?"
            all += [id]
        }
        sql += " ORDER BY calls.id DESC LIMIT ?"
        all += [limit + 1]
        let records = try pool.read { db in
            try Self.records(Row.fetchAll(db, sql: sql, arguments: all), db: db)
        }
        let items = Array(records.prefix(limit))
        let next = records.count > limit ? items.last.map { Self.encodeCursor($0.id, "") } : nil
        return Page(items: items, nextCursor: next)
    }

    /// Spend and tokens, in total and by `grouping`, for the calls matching `filter`.
    public func cost(groupBy grouping: CostGrouping, filter: CallFilter) throws -> CostReport {
        if filter.onlyTimeProviderKey, let parts = Self.rolledUpParts(grouping, filter) {
            return try rolledUpCost(parts)
        }
        return try scannedCost(groupBy: grouping, filter: filter)
    }

    /// The cost report from the hourly rollup for whole hours, plus the calls of the partial
    /// hours at either end of the range: one row per hour and key instead of one per call.
    private func rolledUpCost(_ parts: (sql: String, arguments: StatementArguments)) throws -> CostReport {
        let measures = """
            coalesce(sum(requests), 0) AS requests, coalesce(sum(input_tokens), 0) AS input_tokens,
            coalesce(sum(output_tokens), 0) AS output_tokens, coalesce(sum(cost), 0) AS cost,
            coalesce(sum(unpriced), 0) AS unpriced
            """
        return try pool.read { db in
            let groups = try Row.fetchAll(
                db,
                sql: "WITH parts AS (\(parts.sql)) SELECT key, \(measures) FROM parts GROUP BY key ORDER BY cost DESC, requests DESC, key",
                arguments: parts.arguments
            ).map(Self.costGroup)
            let total = try Row.fetchOne(
                db, sql: "WITH parts AS (\(parts.sql)) SELECT NULL AS key, \(measures) FROM parts", arguments: parts.arguments
            ).map(Self.costGroup)!
            let unpriced = try Row.fetchAll(
                db,
                sql: """
                    WITH parts AS (\(parts.sql))
                    SELECT m || ' @ ' || p AS key, sum(listed) AS requests, sum(listed_input) AS input_tokens,
                      sum(listed_output) AS output_tokens, 0 AS cost, sum(listed) AS unpriced
                    FROM parts WHERE listed > 0 GROUP BY 1 ORDER BY requests DESC, key
                    """, arguments: parts.arguments
            ).map(Self.costGroup)
            return CostReport(total: total, groups: groups, unpriced: unpriced)
        }
    }

    /// The rows the rollup path sums: `cost_hourly` for the whole hours in the filter's range
    /// and the calls of the partial hours at its ends, with the same columns. Nil when the
    /// grouping needs the calls themselves (sessions, tags) or the range is under an hour.
    static func rolledUpParts(_ grouping: CostGrouping, _ filter: CallFilter, series: CostGrouping? = nil)
        -> (sql: String, arguments: StatementArguments)?
    {
        guard let (hourKey, callKey) = keyExpressions(grouping) else { return nil }
        var hourSeries = "NULL"
        var callSeries = "NULL"
        if let series {
            guard let expressions = keyExpressions(series) else { return nil }
            (hourSeries, callSeries) = expressions
        }
        guard let range = RollupRange(filter) else { return nil }
        let listed = "(calls.cost_nano_usd IS NULL AND coalesce(calls.response_model, calls.model) IS NOT NULL AND calls.input_tokens IS NOT NULL)"
        var sql = """
            SELECT \(hourKey) AS key, \(hourSeries) AS key2, provider AS p, model AS m, requests, input_tokens, output_tokens,
              cost_nano_usd AS cost, unpriced, unpriced_listed AS listed, unpriced_input_tokens AS listed_input,
              unpriced_output_tokens AS listed_output
            FROM cost_hourly WHERE \(range.hours)
            """
        var arguments = range.hourArguments
        if let edges = range.edges {
            sql += """

                UNION ALL
                SELECT \(callKey), \(callSeries), calls.provider, coalesce(calls.response_model, calls.model, ''), 1,
                  coalesce(calls.input_tokens, 0), coalesce(calls.output_tokens, 0), coalesce(calls.cost_nano_usd, 0),
                  calls.cost_nano_usd IS NULL, \(listed), \(listed) * coalesce(calls.input_tokens, 0),
                  \(listed) * coalesce(calls.output_tokens, 0)
                FROM calls WHERE \(edges)
                """
            arguments += range.edgeArguments
        }
        return (sql, arguments)
    }

    /// What the hourly rollups (`cost_hourly`, `stats_hourly`) answer for a filter of time,
    /// provider and key: the whole hours in its range, and the calls of the partial hours at
    /// either end. Nil when the range is under an hour (the calls answer that).
    struct RollupRange {
        /// WHERE over a rollup table: the whole hours, the provider, the key.
        var hours: String
        var hourArguments: StatementArguments = []
        /// WHERE over `calls` for the partial hours; nil when the range has none.
        var edges: String?
        var edgeArguments: StatementArguments = []

        init?(_ filter: CallFilter) {
            let firstHour = filter.from.map { ($0 / 3600).rounded(.up) * 3600 }
            let endHour = filter.to.map { ($0 / 3600).rounded(.down) * 3600 }
            if let firstHour, let endHour, firstHour >= endHour { return nil }
            // A time no hour can hold (`from=2e180`, found by schemathesis): the calls answer it.
            for hour in [firstHour, endHour].compactMap({ $0 }) where Int64(exactly: hour) == nil { return nil }
            var hourClauses: [String] = []
            if let firstHour { hourClauses.append("hour >= ?"); hourArguments += [Int64(exactly: firstHour)!] }
            if let endHour { hourClauses.append("hour < ?"); hourArguments += [Int64(exactly: endHour)!] }
            var callClauses: [String] = []
            var callArguments: StatementArguments = []
            if let provider = filter.provider {
                hourClauses.append("provider = ?"); hourArguments += [provider]
                callClauses.append("calls.provider = ?"); callArguments += [provider]
            }
            if let key = filter.apiKey {
                hourClauses.append("key_fingerprint = ?"); hourArguments += [key]
                callClauses.append("calls.key_fingerprint = ?"); callArguments += [key]
            }
            hours = hourClauses.isEmpty ? "1" : hourClauses.joined(separator: " AND ")
            var edgeClauses: [String] = []
            if let from = filter.from, let firstHour {
                edgeClauses.append("(calls.created_at >= ? AND calls.created_at < ?)"); edgeArguments += [from, firstHour]
            }
            if let to = filter.to, let endHour {
                edgeClauses.append("(calls.created_at >= ? AND calls.created_at < ?)"); edgeArguments += [endHour, to]
            }
            if !edgeClauses.isEmpty {
                edges = "(\(edgeClauses.joined(separator: " OR ")))" + callClauses.map { " AND " + $0 }.joined()
                edgeArguments += callArguments
            }
        }
    }

    /// A grouping's SQL over `cost_hourly` and over `calls`; nil for those only the calls have.
    static func keyExpressions(_ grouping: CostGrouping) -> (hour: String, call: String)? {
        switch grouping {
        case .model: ("nullif(model, '')", "coalesce(calls.response_model, calls.model)")
        case .provider: ("provider", "calls.provider")
        case .day: ("strftime('%Y-%m-%d', hour, 'unixepoch')", "strftime('%Y-%m-%d', calls.created_at, 'unixepoch')")
        case .hour: ("strftime('%Y-%m-%dT%H:00Z', hour, 'unixepoch')", "strftime('%Y-%m-%dT%H:00Z', calls.created_at, 'unixepoch')")
        case .apiKey: ("nullif(key_fingerprint, '')", "calls.key_fingerprint")
        case .session, .tag: nil
        }
    }

    /// Spend per `grouping` split by `series` — the data of a stacked chart (cost per day by
    /// model). Both must be groupings the hourly sums know (not session or tag); groups come
    /// in key order, each with its series by cost.
    public func costSeries(groupBy grouping: CostGrouping, series: CostGrouping, filter: CallFilter) throws -> [CostGroup] {
        guard let (_, callKey) = Self.keyExpressions(grouping), let (_, callSeries) = Self.keyExpressions(series) else {
            throw QueryError.unsupportedSeries
        }
        let measures = """
            coalesce(sum(requests), 0) AS requests, coalesce(sum(input_tokens), 0) AS input_tokens,
            coalesce(sum(output_tokens), 0) AS output_tokens, coalesce(sum(cost), 0) AS cost,
            coalesce(sum(unpriced), 0) AS unpriced
            """
        let parts: (sql: String, arguments: StatementArguments)
        if filter.onlyTimeProviderKey, let rolled = Self.rolledUpParts(grouping, filter, series: series) {
            parts = rolled
        } else {
            let (clause, arguments) = filter.sql()
            parts = (
                """
                SELECT \(callKey) AS key, \(callSeries) AS key2, 1 AS requests, coalesce(calls.input_tokens, 0) AS input_tokens,
                  coalesce(calls.output_tokens, 0) AS output_tokens, coalesce(calls.cost_nano_usd, 0) AS cost,
                  calls.cost_nano_usd IS NULL AS unpriced
                FROM calls WHERE \(clause)
                """, arguments
            )
        }
        let rows = try pool.read { db in
            try Row.fetchAll(
                db, sql: "WITH parts AS (\(parts.sql)) SELECT key, key2, \(measures) FROM parts GROUP BY key, key2 ORDER BY key, cost DESC, key2",
                arguments: parts.arguments)
        }
        var groups: [CostGroup] = []
        for row in rows {
            let part = CostGroup(
                key: row["key2"], requests: row["requests"], inputTokens: row["input_tokens"], outputTokens: row["output_tokens"],
                costNanoUSD: row["cost"], unpricedRequests: row["unpriced"])
            let key: String? = row["key"]
            if groups.last?.key != key || groups.isEmpty {
                groups.append(CostGroup(key: key, requests: 0, inputTokens: 0, outputTokens: 0, costNanoUSD: 0, unpricedRequests: 0))
            }
            groups[groups.count - 1].add(part)
        }
        return groups
    }

    /// The cost report summed over the matching calls themselves.
    func scannedCost(groupBy grouping: CostGrouping, filter: CallFilter) throws -> CostReport {
        let (clause, arguments) = filter.sql()
        let key: String
        var join = ""
        var all = StatementArguments()
        switch grouping {
        case .model: key = "coalesce(calls.response_model, calls.model)"
        case .provider: key = "calls.provider"
        case .day: key = "strftime('%Y-%m-%d', calls.created_at, 'unixepoch')"
        case .hour: key = "strftime('%Y-%m-%dT%H:00Z', calls.created_at, 'unixepoch')"
        case .session: key = "calls.session_id"
        case .apiKey: key = "calls.key_fingerprint"
        case .tag(let name):
            key = "g.value"
            join = "LEFT JOIN tags g ON g.call_id = calls.id AND g.key = ?"
            all += [name]
        }
        all += arguments
        let measures = """
            count(*) AS requests, coalesce(sum(calls.input_tokens), 0) AS input_tokens,
            coalesce(sum(calls.output_tokens), 0) AS output_tokens, coalesce(sum(calls.cost_nano_usd), 0) AS cost,
            sum(calls.cost_nano_usd IS NULL) AS unpriced
            """
        return try pool.read { db in
            let groups = try Row.fetchAll(
                db,
                sql: "SELECT \(key) AS key, \(measures) FROM calls \(join) WHERE \(clause) GROUP BY 1 ORDER BY cost DESC, requests DESC, key",
                arguments: all
            ).map(Self.costGroup)
            let total = try Row.fetchOne(db, sql: "SELECT NULL AS key, \(measures) FROM calls WHERE \(clause)", arguments: arguments)
                .map(Self.costGroup)!
            let unpriced = try Row.fetchAll(
                db,
                sql: """
                    SELECT coalesce(calls.response_model, calls.model) || ' @ ' || calls.provider AS key, \(measures)
                    FROM calls WHERE \(clause) AND calls.cost_nano_usd IS NULL
                      AND coalesce(calls.response_model, calls.model) IS NOT NULL AND calls.input_tokens IS NOT NULL
                    GROUP BY 1 ORDER BY requests DESC, key
                    """, arguments: arguments
            ).map(Self.costGroup)
            return CostReport(total: total, groups: groups, unpriced: unpriced)
        }
    }

    /// Calls written after `afterRowID`, oldest first, with the rowid to continue from (`llmtap tail`).
    public func calls(afterRowID: Int64, limit: Int = 100) throws -> (calls: [CallRecord], last: Int64) {
        try pool.read { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT rowid AS row_id, * FROM calls WHERE rowid > ? ORDER BY rowid LIMIT ?",
                arguments: [afterRowID, limit])
            let last = rows.last.map { $0["row_id"] as Int64 } ?? afterRowID
            return (try Self.records(rows, db: db), last)
        }
    }

    /// The rowid of the newest call (0 when there is none).
    public func lastRowID() throws -> Int64 {
        try pool.read { db in try Int64.fetchOne(db, sql: "SELECT coalesce(max(rowid), 0) FROM calls") ?? 0 }
    }

    /// The migrations applied, in order (`llmtap check`).
    public func appliedMigrations() throws -> [String] {
        // In the order they were registered (sorting the names put "v10" before "v2").
        try pool.read { db in
            let applied = try Migrations.migrator.appliedIdentifiers(db)
            return Migrations.migrator.migrations.filter(applied.contains)
        }
    }

    /// A session's summary over its calls (the caller adds WHERE and GROUP BY session_id).
    static let sessionSummarySelect = """
        SELECT session_id, min(created_at) AS first_at, max(created_at) AS last_at, count(*) AS requests,
          coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(output_tokens), 0) AS output_tokens,
          coalesce(sum(cost_nano_usd), 0) AS cost, sum(cost_nano_usd IS NULL) AS unpriced,
          group_concat(DISTINCT coalesce(response_model, model)) AS models
        FROM calls
        """

    static func sessionSummary(_ row: Row) -> SessionSummary {
        SessionSummary(
            id: row["session_id"], firstAt: row["first_at"], lastAt: row["last_at"], requests: row["requests"],
            inputTokens: row["input_tokens"], outputTokens: row["output_tokens"], costNanoUSD: row["cost"],
            unpricedRequests: row["unpriced"],
            models: ((row["models"] as String?) ?? "").split(separator: ",").map(String.init).sorted())
    }

    static func costGroup(_ row: Row) -> CostGroup {
        CostGroup(
            key: row["key"], requests: row["requests"], inputTokens: row["input_tokens"],
            outputTokens: row["output_tokens"], costNanoUSD: row["cost"], unpricedRequests: row["unpriced"] ?? 0)
    }

    /// Cursors are opaque to clients: base64url of the sort key.
    static func encodeCursor(_ a: String, _ b: String) -> String {
        Data("\(a)\n\(b)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decodeCursor(_ cursor: String) -> (String, String)? {
        var base64 = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8) else { return nil }
        let parts = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        return (String(parts[0]), String(parts[1]))
    }
}

public enum QueryError: Error, Equatable {
    case badCursor
    /// A series needs groupings the hourly sums know: model, provider, day, hour or api_key.
    case unsupportedSeries
}
