import Foundation
import GRDB
import LLMTapCore

/// The quantile sketches of `/api/stats` for one hour × provider × model × key: latency, time
/// to first token, inter-token latency and tokens/s (`stats_hourly`, migration v7). The writer
/// adds each batch's in its transaction; retention takes deleted calls' back out.
struct StatsSketches {
    var latency = Sketch()
    var ttft = Sketch()
    var itl = Sketch()
    var tps = Sketch()

    /// The columns a call contributes, by name, as in `calls`.
    static let callColumns = "latency_s, ttft_s, itl_s, tokens_per_second"

    mutating func add(latency: Double?, ttft: Double?, itl: Double?, tps: Double?) {
        if let latency { self.latency.add(latency) }
        if let ttft { self.ttft.add(ttft) }
        if let itl { self.itl.add(itl) }
        if let tps { self.tps.add(tps) }
    }

    /// A call's values from a row with `callColumns`.
    mutating func add(call row: Row) {
        add(latency: row["latency_s"], ttft: row["ttft_s"], itl: row["itl_s"], tps: row["tokens_per_second"])
    }

    mutating func merge(_ other: StatsSketches) {
        latency.merge(other.latency)
        ttft.merge(other.ttft)
        itl.merge(other.itl)
        tps.merge(other.tps)
    }

    mutating func subtract(_ other: StatsSketches) {
        latency.subtract(other.latency)
        ttft.subtract(other.ttft)
        itl.subtract(other.itl)
        tps.subtract(other.tps)
    }

    /// The sketches of a `stats_hourly` row; a column that does not decode counts nothing.
    init(rollup row: Row) {
        func sketch(_ column: String) -> Sketch { (row[column] as Data?).flatMap { Sketch(encoded: Array($0)) } ?? Sketch() }
        latency = sketch("latency")
        ttft = sketch("ttft")
        itl = sketch("itl")
        tps = sketch("tps")
    }

    init() {}

    /// Adds (or, for deleted calls, subtracts) sketches into `stats_hourly`; a row left with no
    /// call is deleted.
    static func apply(_ sketches: [BatchSums.HourKey: StatsSketches], subtracting: Bool = false, db: Database) throws {
        let read = try db.cachedStatement(
            sql: "SELECT latency, ttft, itl, tps FROM stats_hourly WHERE hour = ? AND provider = ? AND model = ? AND key_fingerprint = ?")
        let write = try db.cachedStatement(sql: "INSERT OR REPLACE INTO stats_hourly VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        let delete = try db.cachedStatement(
            sql: "DELETE FROM stats_hourly WHERE hour = ? AND provider = ? AND model = ? AND key_fingerprint = ?")
        for (key, change) in sketches {
            let keyArguments: StatementArguments = [key.hour, key.provider, key.model, key.key]
            var sums = try Row.fetchOne(read, arguments: keyArguments).map { StatsSketches(rollup: $0) } ?? StatsSketches()
            if subtracting { sums.subtract(change) } else { sums.merge(change) }
            if sums.latency.count == 0 {
                try delete.execute(arguments: keyArguments)
            } else {
                try write.execute(arguments: [
                    key.hour, key.provider, key.model, key.key, Data(sums.latency.encoded), Data(sums.ttft.encoded),
                    Data(sums.itl.encoded), Data(sums.tps.encoded),
                ])
            }
        }
    }

    /// The rollup key of a `calls` row with `created_at`, `provider`, `response_model`, `model`
    /// and `key_fingerprint` (as `BatchSums` keys a call it inserts).
    static func key(call row: Row) -> BatchSums.HourKey {
        let createdAt: Double = row["created_at"]
        return BatchSums.HourKey(
            hour: BatchSums.hour(of: createdAt), provider: row["provider"] ?? "",
            model: (row["response_model"] as String?) ?? (row["model"] as String?) ?? "", key: row["key_fingerprint"] ?? "")
    }

    static let keyColumns = "created_at, provider, response_model, model, key_fingerprint"

    /// Sketches of every call already in the database (migration v7), a page of calls at a time.
    static func backfill(_ db: Database) throws {
        var sketches: [BatchSums.HourKey: StatsSketches] = [:]
        let rows = try Row.fetchCursor(db, sql: "SELECT \(keyColumns), \(callColumns) FROM calls")
        while let row = try rows.next() { sketches[key(call: row), default: StatsSketches()].add(call: row) }
        try apply(sketches, db: db)
    }
}

extension Store {
    /// Latency, TTFT, inter-token latency and tokens/s percentiles per model. A filter of time,
    /// provider and key is answered from `stats_hourly` (plus the calls of the partial hours at
    /// the range's ends); other filters scan the calls. Either way through the same sketches,
    /// so the two agree: each percentile is within 1 % of the exact nearest-rank value.
    public func stats(filter: CallFilter) throws -> [LatencyStats] {
        try stats(filter: filter, rollup: true)
    }

    /// `rollup: false` scans the calls whatever the filter (tests compare the two paths).
    func stats(filter: CallFilter, rollup: Bool) throws -> [LatencyStats] {
        try pool.read { db in
            var byModel: [String: StatsSketches] = [:]
            func addCalls(where clause: String, _ arguments: StatementArguments) throws {
                let rows = try Row.fetchCursor(
                    db, sql: "SELECT coalesce(response_model, model, '') AS m, \(StatsSketches.callColumns) FROM calls WHERE \(clause)",
                    arguments: arguments)
                while let row = try rows.next() { byModel[row["m"], default: StatsSketches()].add(call: row) }
            }
            if rollup, filter.onlyTimeProviderKey, let range = RollupRange(filter) {
                let rows = try Row.fetchCursor(
                    db, sql: "SELECT model, latency, ttft, itl, tps FROM stats_hourly WHERE \(range.hours)",
                    arguments: range.hourArguments)
                while let row = try rows.next() { byModel[row["model"], default: StatsSketches()].merge(StatsSketches(rollup: row)) }
                if let edges = range.edges { try addCalls(where: edges, range.edgeArguments) }
            } else {
                let (clause, arguments) = filter.sql()
                try addCalls(where: clause, arguments)
            }
            return byModel.filter { $0.value.latency.count > 0 }.keys.sorted().map { model in
                let s = byModel[model]!
                return LatencyStats(
                    model: model.isEmpty ? "(none)" : model, requests: s.latency.count, latency: Percentiles(s.latency),
                    ttft: Percentiles(s.ttft), itl: Percentiles(s.itl), tokensPerSecond: Percentiles(s.tps))
            }
        }
    }
}
