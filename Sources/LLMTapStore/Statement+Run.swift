import GRDB
import GRDBSQLite

extension Statement {
    /// Binds `values` to the statement's placeholders, in order, and runs it: what
    /// `execute(arguments:)` does, without building `StatementArguments`.
    ///
    /// Why not GRDB's own call: `StatementArguments` made from a `[DatabaseValue]` goes through
    /// GRDB's generic `Sequence` initializer, which reads each value through a key path (with a
    /// metadata lookup each), then validates them against the placeholders' names. For the
    /// 49 columns of a `calls` row that was about a third of the writer thread's time
    /// (llmtap-bench, synthetic corpus). The values are bound with GRDB's own
    /// `DatabaseValue.bind(to:at:)` (copies, like `setArguments`), and the step runs on the
    /// statement's connection inside the caller's GRDB access. What GRDB would do around the
    /// step and this skips: database-region tracking and transaction observers (llmtap's store
    /// registers none) and taking a failed statement out of its cache (the next run resets it).
    func run(_ values: some Collection<DatabaseValue>) throws {
        try forEachRow(values) { _ in }
    }

    /// Binds `values` as `run` does and hands each result row to `row` as SQLite's statement,
    /// to read with `sqlite3_column_*`: no `Row`, and no `Data` for a blob, per row. The
    /// writer reads whole key tables into its filter this way (`ContentKeys`), 65,536 rows a
    /// write; as `Data` values they took a heap block each.
    func forEachRow(_ values: some Collection<DatabaseValue>, _ row: (SQLiteStatement) throws -> Void) throws {
        let statement = sqliteStatement
        sqlite3_reset(statement)  // a previous run's error code, if any, was thrown then
        guard values.count == Int(sqlite3_bind_parameter_count(statement)) else {
            throw DatabaseError(
                resultCode: .SQLITE_MISUSE, message: "wrong number of statement arguments: \(values.count)", sql: sql)
        }
        var index: CInt = 1
        for value in values {
            let code = value.bind(to: statement, at: index)
            guard code == SQLITE_OK else { throw failure(code) }
            index += 1
        }
        while true {
            switch sqlite3_step(statement) {
            case SQLITE_DONE: return
            case SQLITE_ROW: try row(statement)
            case let code: throw failure(code)
            }
        }
    }

    /// The first result row's first column as an integer (nil: no row, or NULL), read as
    /// `forEachRow` reads: the writer's lookups by key (a node, a stored hash, whether a call is
    /// its session's latest) without GRDB's `fetchOne`, whose arguments, cursor and row
    /// decoding were most of such a lookup's cost (~2 % of llmtap's CPU at 32 connections).
    func firstInt64(_ values: some Collection<DatabaseValue>) throws -> Int64? {
        var first: Int64?
        var read = false
        try forEachRow(values) { row in
            guard !read else { return }
            read = true
            if sqlite3_column_type(row, 0) != SQLITE_NULL { first = sqlite3_column_int64(row, 0) }
        }
        return first
    }

    /// GRDB turns extended result codes on for its connections: `code` is one already.
    private func failure(_ code: CInt) -> DatabaseError {
        DatabaseError(
            resultCode: ResultCode(rawValue: code),
            message: sqlite3_db_handle(sqliteStatement).map { String(cString: sqlite3_errmsg($0)) }, sql: sql)
    }
}
