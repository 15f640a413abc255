import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// Copies the write-ahead log into the database file on a connection and a thread of its own,
/// so that the writer's transactions do not.
///
/// SQLite checkpoints in the commit that takes the log past `wal_autocheckpoint`: that commit
/// copies the log's pages into the file and syncs both before it returns. With a 64 MiB log
/// those were the longest writes by far (`llmtap-bench`, 300 k synthetic calls: 230 – 370 ms,
/// about every 25,000 calls, against ~50 ms for a 512-call batch); the calls behind them
/// queued, and a call under `--durability sync` waited. Here a commit only notes how long the
/// log is (`sqlite3_wal_hook`, which takes the place of SQLite's own auto-checkpoint), and
/// past `logBytes` a passive checkpoint runs on the other connection while the writer
/// goes on — in WAL mode a checkpoint and a writer proceed together. The writer starts the log
/// over at its first write after a checkpoint copied all of it; one that ran during commits
/// leaves their pages, and the next commit asks for another.
///
/// Should the log reach `4 × logBytes` anyway (checkpoints failing, or held back by a
/// reader that never ends), the writer checkpoints in its commit, as SQLite would have.
final class Checkpointer: Sendable {
    let path: String
    /// Bytes of log that start a checkpoint.
    let logBytes: Int

    struct Counts: Sendable, Equatable {
        /// Checkpoints run on the checkpointer's connection.
        var background = 0
        /// Checkpoints the writer ran in its commit (the log had reached `4 × logBytes`).
        var inWriter = 0
        /// Pages in the log at the latest commit.
        var logPages = 0
    }

    private struct State {
        /// `logBytes` in the file's pages.
        var threshold = Int.max
        var counts = Counts()
        var scheduled = false
        var closed = false
        var connection: DatabaseQueue?
    }

    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "llmtap.checkpoint")

    init(path: String, logBytes: Int) {
        self.path = path
        self.logBytes = logBytes
    }

    var counts: Counts { state.withLock { $0.counts } }
    /// `logBytes` in the file's pages, once the writer's connection is open.
    var thresholdPages: Int { state.withLock { $0.threshold } }

    /// Called on the writer's connection as it opens: its commits report to this checkpointer.
    /// The checkpointer must outlive the connection (the store holds both).
    func install(on db: Database) throws {
        let pageSize = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
        state.withLock { $0.threshold = max(1, logBytes / max(pageSize, 512)) }
        sqlite3_wal_hook(
            db.sqliteConnection,
            { context, connection, _, pages in
                Unmanaged<Checkpointer>.fromOpaque(context!).takeUnretainedValue()
                    .committed(logPages: Int(pages), connection: connection)
                return SQLITE_OK
            },
            Unmanaged.passUnretained(self).toOpaque())
    }

    private func committed(logPages: Int, connection: OpaquePointer?) {
        let (start, overdue): (Bool, Bool) = state.withLock { s in
            s.counts.logPages = logPages
            guard logPages >= s.threshold else { return (false, false) }
            guard !s.scheduled, !s.closed else { return (false, logPages >= 4 * s.threshold) }
            s.scheduled = true
            return (true, false)
        }
        if start {
            queue.async { self.run() }
        } else if overdue {
            // Inside the hook, as SQLite's own auto-checkpoint runs; a busy or failed one is retried at the next commit.
            if sqlite3_wal_checkpoint_v2(connection, "main", SQLITE_CHECKPOINT_PASSIVE, nil, nil) == SQLITE_OK {
                state.withLock { $0.counts.inWriter += 1 }
            }
        }
    }

    private func run() {
        let connection: DatabaseQueue? = state.withLock { s in
            guard !s.closed else { return nil }
            if s.connection == nil {
                var configuration = Configuration()
                configuration.label = "llmtap.checkpoint"
                s.connection = try? DatabaseQueue(path: path, configuration: configuration)
            }
            return s.connection
        }
        // A failure (the file gone, a disk error) is met again by the writer, which reports it;
        // the next commit past the threshold tries again.
        let done = (try? connection?.writeWithoutTransaction { db in try db.checkpoint(.passive) }) != nil
        state.withLock { s in
            s.scheduled = false
            if done { s.counts.background += 1 }
        }
    }

    /// The database file was opened afresh: the next checkpoint opens it too.
    func reset() {
        queue.sync {
            state.withLock { $0.connection = nil }
        }
    }

    /// Waits for a checkpoint under way and closes the connection; no checkpoint starts after.
    func close() throws {
        state.withLock { $0.closed = true }
        let connection = queue.sync { state.withLock { s in defer { s.connection = nil }; return s.connection } }
        try connection?.close()
    }

    /// Holds checkpoints back until `resume` (tests: the writer's commits must not wait for them).
    func suspend() { queue.suspend() }
    func resume() { queue.resume() }
}
