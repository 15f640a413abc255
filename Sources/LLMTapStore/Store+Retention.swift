import Foundation
import GRDB
import LLMTapCore

extension Store {
    /// Deletes calls created before `cutoff` (Unix seconds) with their payloads, tags and
    /// search entries, in transactions of `batchSize` calls so the write lock is never held
    /// long. Messages and nodes stay: other calls may share them.
    ///
    /// Calls go in insertion order, as a prefix of the audit chain: deletion stops at the
    /// first call made at or after the cutoff (so a call written just after a later one may
    /// outlive the cutoff by a moment), and each step leaves a signed checkpoint holding the
    /// last deleted call's link, from which `verifyChain` continues.
    /// - Returns: how many calls were deleted.
    @discardableResult
    public func prune(before cutoff: Double, batchSize: Int = 1000) async throws -> Int {
        let key = try SecretKeyFile.load(path: path + ".fingerprint-key")
        let bound = try await firstRowID(madeAtOrAfter: cutoff)
        return try await inBatches(of: batchSize, freeingFragmentsBefore: bound) { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT rowid AS row_id, id, chat_input, output, text_from_thread, context_node, reply_node, chain_hash,
                      \(StatsSketches.keyColumns),
                      \(StatsSketches.callColumns)
                    FROM calls WHERE rowid < ? ORDER BY rowid LIMIT ?
                    """,
                arguments: [bound, batchSize])
            let forget = try db.cachedStatement(
                sql: "INSERT INTO calls_fts (calls_fts, rowid, chat_input, output) VALUES ('delete', ?, ?, ?)")
            let delete = try db.cachedStatement(sql: "DELETE FROM calls WHERE id = ?")
            var deleted: [BatchSums.HourKey: StatsSketches] = [:]  // what the stats rollup counted of these
            let reader = ContextReader()
            for row in rows {
                deleted[StatsSketches.key(call: row), default: StatsSketches()].add(call: row)
                // The search index is told exactly what it indexed (text kept in the messages included).
                let (input, output) = try ThreadText.texts(of: row, reader: reader, db: db)
                if input != nil || output != nil {
                    try forget.execute(arguments: [row["row_id"] as Int64, input, output])
                }
                try delete.execute(arguments: [row["id"] as String])  // tags cascade, payloads go by trigger
            }
            try StatsSketches.apply(deleted, subtracting: true, db: db)
            if let last = rows.last, let hash = last["chain_hash"] as Data? {
                let lastRowID: Int64 = last["row_id"]
                let now = Date().timeIntervalSince1970
                try db.execute(
                    sql: "INSERT INTO chain_checkpoints (last_rowid, chain_hash, created_at, deleted, signature) VALUES (?, ?, ?, ?, ?)",
                    arguments: [
                        lastRowID, hash, now, rows.count,
                        AuditChain.signature(key: key, lastRowID: lastRowID, hash: hash, createdAt: now, deleted: rows.count),
                    ])
            }
            return rows.count
        }
    }

    /// Runs `step` — one write transaction handling up to `batchSize` rows, returning how many
    /// it handled — until a step handles fewer, handing space back after each; then drops the
    /// request fragments only calls before `bound` used. Returns the rows handled in all.
    private func inBatches(
        of batchSize: Int, freeingFragmentsBefore bound: Int64, _ step: @escaping @Sendable (Database) throws -> Int
    ) async throws -> Int {
        var total = 0
        while true {
            let handled = try await pool.write(step)
            total += handled
            if handled > 0 { try await reclaimSpace() }
            if handled < batchSize {
                if total > 0 { try await dropFragments(usedOnlyBefore: bound) }
                return total
            }
        }
    }

    /// The first call (in write order) made at or after `cutoff`; every call written before it
    /// was made before the cutoff. `Int64.max` when there is none.
    func firstRowID(madeAtOrAfter cutoff: Double) async throws -> Int64 {
        try await pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT min(rowid) FROM calls WHERE created_at >= ?", arguments: [cutoff])
        } ?? Int64.max
    }

    /// Request fragments that only calls before `rowID` used, once those calls or their
    /// payloads are gone. Every fragment records the newest call that used it, up to the
    /// writer's slack (`FragmentCache`), so only those that far behind go.
    func dropFragments(usedOnlyBefore rowID: Int64) async throws {
        try await pool.write { db in
            let before = rowID - fragmentCache.slack
            try db.execute(
                sql: "DELETE FROM fragment_keys WHERE (hash, id) IN (SELECT hash, id FROM fragments WHERE last_rowid < ?)",
                arguments: [before])
            try db.execute(sql: "DELETE FROM fragments WHERE last_rowid < ?", arguments: [before])
        }
        fragmentKeys.invalidate()  // the writer's map may name some of them
        try await reclaimSpace()
    }

    /// `--retain-payloads`: drops the request and response bodies of calls created before
    /// `cutoff`, keeping every fact, the sums and the audit chain (each payload row keeps the
    /// digest its link was made from). Batches of `batchSize`, space returned to the file
    /// system as it goes (incremental vacuum).
    /// - Returns: how many payloads were dropped.
    @discardableResult
    public func dropPayloads(before cutoff: Double, batchSize: Int = 1000) async throws -> Int {
        // Calls before this one were all made before the cutoff: their payloads all go.
        let bound = try await firstRowID(madeAtOrAfter: cutoff)
        return try await inBatches(of: batchSize, freeingFragmentsBefore: bound) { db in
            let rows = try Row.fetchAll(
                db,
                sql: AuditChain.payloadRows(where: "c.created_at < ? AND p.digest IS NULL") + " LIMIT ?",
                arguments: [cutoff, batchSize])
            let drop = try db.cachedStatement(
                sql: "UPDATE payloads SET request = x'', response = x'', fragment_ids = NULL, digest = ? WHERE call_rowid = ?")
            for row in rows {
                // (a fragment already missing broke the chain: `verify` reports it at this call)
                let fragments = try AuditChain.fragmentHashes(row["fragment_ids"], format: row["request_format"], db: db) ?? []
                let digest = AuditChain.payloadDigest(AuditChain.payloadColumns.map { row[$0] as DatabaseValue }, fragments: fragments)
                try drop.execute(arguments: [digest, row["call_rowid"] as Int64])
            }
            return rows.count
        }
    }

    /// Hands free pages back to the file system, a few at a time (databases created with
    /// incremental auto-vacuum; others keep their free pages for reuse).
    func reclaimSpace() async throws {
        try await pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA incremental_vacuum(2000)") }
    }

    /// Every call in creation order, page by page (constant memory), for `llmtap export`.
    /// - Parameter payloads: also read each call's request and response bytes (backups).
    public func forEachCall(
        filter: CallFilter, pageSize: Int = 500, payloads: Bool = false, _ body: (CallRecord) throws -> Void
    ) throws {
        var cursor: String?
        repeat {
            let (clause, arguments) = filter.sql()
            var sql = "SELECT * FROM calls WHERE \(clause)"
            var all = arguments
            if let cursor {
                sql += " AND calls.id > ?"
                all += [cursor]
            }
            sql += " ORDER BY calls.id LIMIT ?"
            all += [pageSize]
            let page = try pool.read { db in
                var records = try Self.records(Row.fetchAll(db, sql: sql, arguments: all), db: db)
                if payloads { for index in records.indices { try Self.loadPayload(into: &records[index], db: db) } }
                return records
            }
            for record in page { try body(record) }
            cursor = page.count == pageSize ? page.last?.id : nil
        } while cursor != nil
    }

    /// How many calls match (for export's progress).
    public func count(filter: CallFilter) throws -> Int {
        let (clause, arguments) = filter.sql()
        return try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM calls WHERE \(clause)", arguments: arguments) ?? 0 }
    }
}

/// Durations as users write them: `90d`, `12h`, `30m`, `45s`, `2w`.
public enum RetentionPeriod {
    public static func seconds(_ text: String) -> Double? {
        guard let unit = text.last, let value = Double(text.dropLast()), value > 0 else { return nil }
        switch unit {
        case "s": return value
        case "m": return value * 60
        case "h": return value * 3600
        case "d": return value * 86400
        case "w": return value * 7 * 86400
        default: return nil
        }
    }
}
