import GRDB

/// The `sessions`, `cost_hourly` and `stats_hourly` sums of the calls one batch inserts,
/// added in the batch's transaction with one upsert per session × model and per hour ×
/// provider × model × key rather than a trigger per call (a third of the write cost at
/// thousands of calls per second). Deletes and reprices adjust the first two through
/// triggers (migration v3); `prune` takes deleted calls out of the sketches itself (SQL
/// cannot open them), and a reprice does not change them.
struct BatchSums {
    struct SessionKey: Hashable {
        var id: String
        var model: String
    }
    struct HourKey: Hashable {
        var hour: Int64
        var provider: String
        var model: String
        var key: String
    }
    struct Sums {
        var firstAt = Double.infinity
        var lastAt = -Double.infinity
        var requests: Int64 = 0
        var input: Int64 = 0
        var output: Int64 = 0
        var cost: Int64 = 0
        var unpriced: Int64 = 0
        var listed: Int64 = 0
        var listedInput: Int64 = 0
        var listedOutput: Int64 = 0
    }

    private var sessions: [SessionKey: Sums] = [:]
    private var hours: [HourKey: Sums] = [:]
    private var stats: [HourKey: StatsSketches] = [:]

    /// Counts a call by its `calls` row (`Store.callColumns` order), as inserted.
    mutating func add(_ values: [DatabaseValue]) {
        typealias Position = Store.Position
        func text(_ position: Int) -> String? { String.fromDatabaseValue(values[position]) }
        func integer(_ position: Int) -> Int64? { Int64.fromDatabaseValue(values[position]) }
        func real(_ position: Int) -> Double? { Double.fromDatabaseValue(values[position]) }
        let createdAt = real(Position.createdAt) ?? 0
        let model = text(Position.responseModel) ?? text(Position.model)
        let inputTokens = integer(Position.inputTokens)
        let input = inputTokens ?? 0
        let output = integer(Position.outputTokens) ?? 0
        let cost = integer(Position.cost)
        let listed: Int64 = cost == nil && model != nil && inputTokens != nil ? 1 : 0
        func count(_ sums: inout Sums) {
            sums.firstAt = min(sums.firstAt, createdAt)
            sums.lastAt = max(sums.lastAt, createdAt)
            sums.requests += 1
            sums.input += input
            sums.output += output
            sums.cost += cost ?? 0
            sums.unpriced += cost == nil ? 1 : 0
            sums.listed += listed
            sums.listedInput += listed * input
            sums.listedOutput += listed * output
        }
        let hour = HourKey(
            hour: Self.hour(of: createdAt), provider: text(Position.provider) ?? "", model: model ?? "",
            key: text(Position.key) ?? "")
        count(&hours[hour, default: Sums()])
        stats[hour, default: StatsSketches()].add(
            latency: real(Position.latency), ttft: real(Position.ttft), itl: real(Position.itl),
            tps: real(Position.tokensPerSecond))
        if let session = text(Position.sessionID) { count(&sessions[SessionKey(id: session, model: model ?? ""), default: Sums()]) }
    }

    /// The start of a time's hour, Unix seconds. An imported call can carry any time: one
    /// beyond what an hour can hold (or not a number) is clamped, never a crash.
    static func hour(of time: Double) -> Int64 {
        let hours = (time / 3600).rounded(.down)
        let limit: Double = 1e15  // hours: 100 billion years either way, well inside Int64 seconds
        guard hours.isFinite, abs(hours) < limit else { return hours.isNaN ? 0 : Int64(hours > 0 ? limit : -limit) * 3600 }
        return Int64(hours) * 3600
    }

    func write(_ db: Database) throws {
        let hourly = try db.cachedStatement(
            sql: """
                INSERT INTO cost_hourly VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (hour, provider, model, key_fingerprint) DO UPDATE SET
                  requests = requests + excluded.requests, input_tokens = input_tokens + excluded.input_tokens,
                  output_tokens = output_tokens + excluded.output_tokens, cost_nano_usd = cost_nano_usd + excluded.cost_nano_usd,
                  unpriced = unpriced + excluded.unpriced, unpriced_listed = unpriced_listed + excluded.unpriced_listed,
                  unpriced_input_tokens = unpriced_input_tokens + excluded.unpriced_input_tokens,
                  unpriced_output_tokens = unpriced_output_tokens + excluded.unpriced_output_tokens
                """)
        for (key, s) in hours {
            try hourly.execute(arguments: [
                key.hour, key.provider, key.model, key.key, s.requests, s.input, s.output, s.cost, s.unpriced, s.listed,
                s.listedInput, s.listedOutput,
            ])
        }
        let session = try db.cachedStatement(
            sql: """
                INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET
                  first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at),
                  requests = requests + excluded.requests, input_tokens = input_tokens + excluded.input_tokens,
                  output_tokens = output_tokens + excluded.output_tokens, cost_nano_usd = cost_nano_usd + excluded.cost_nano_usd,
                  unpriced = unpriced + excluded.unpriced,
                  models = CASE
                    WHEN excluded.models = '' OR instr(',' || models || ',', ',' || excluded.models || ',') > 0 THEN models
                    WHEN models = '' THEN excluded.models
                    ELSE models || ',' || excluded.models END
                """)
        for (key, s) in sessions {
            try session.execute(arguments: [key.id, s.firstAt, s.lastAt, s.requests, s.input, s.output, s.cost, s.unpriced, key.model])
        }
        try StatsSketches.apply(stats, db: db)
    }
}
