import Foundation
import GRDB
import LLMTapCore
import Logging
import ServiceLifecycle
import Synchronization

/// The only writer of calls. The proxy hands it finished calls with `submit`,
/// which never waits; the service writes them in batches (up to `batchSize`
/// rows, or whatever arrived within `flushInterval`) in one transaction each.
///
/// When the queue is full or a write fails (database locked, full, read-only,
/// gone), calls go to the `Spool` and are replayed once a write succeeds
/// again. On graceful shutdown it writes everything still queued, then returns.
/// Calls that neither the database nor the spool could take are counted in
/// `stats.dropped` and logged.
public final class Recorder: Service, Sendable {
    public struct Configuration: Sendable {
        /// Calls held in memory before spilling to the spool.
        public var capacity: Int = 20_000
        public var batchSize: Int = 2048
        /// How long the first call of a batch may wait for others.
        public var flushInterval: Duration = .milliseconds(10)
        /// How often a spool is retried while nothing new arrives.
        public var retryInterval: Duration = .seconds(1)

        public init() {}
    }

    public struct Stats: Sendable, Equatable {
        public var queued = 0
        public var written = 0
        public var spooled = 0
        public var replayed = 0
        public var dropped = 0
        public var failedWrites = 0
        public var batches = 0
        /// Times the database file was opened afresh (deleted, replaced or read-only under llmtap).
        public var reopened = 0
        /// The last write succeeded (false while the database refuses writes).
        public var databaseHealthy = true
    }

    private struct State {
        var queue: [CallRecord] = []
        var stats = Stats()
        var waiter: CheckedContinuation<Void, Never>?
        var doorbell = false
        var stopping = false
        /// `submitAndWait` callers, by call id, resumed once their call is committed or spooled.
        var committed: [String: CheckedContinuation<Void, Never>] = [:]
        /// The last write failed in a way a fresh open may cure (read-only, I/O error, file gone).
        var reopenWanted = false
    }

    public let store: Store
    public let spool: Spool
    /// Calls as they are committed.
    public let feed = CallFeed()
    let configuration: Configuration
    let logger: Logger
    private let state = Mutex(State())
    /// Serializing, compressing and hashing a batch takes milliseconds of CPU: it runs here,
    /// not on Swift's cooperative pool, whose few threads serve the requests.
    private let preparer = DispatchQueue(label: "llmtap.recorder.prepare")
    /// Builds the records of `submit(building:)`, in order, off the callers' threads.
    private let builder = DispatchQueue(label: "llmtap.recorder.build")

    public init(store: Store, spool: Spool, configuration: Configuration = .init(), logger: Logger) {
        self.store = store
        self.spool = spool
        self.configuration = configuration
        self.logger = logger
    }

    public var stats: Stats {
        state.withLock { s in
            var stats = s.stats
            stats.queued = s.queue.count
            return stats
        }
    }

    /// Queues a finished call; never blocks on the database.
    public func submit(_ record: CallRecord) {
        let accepted = state.withLock { s -> Bool in
            guard s.queue.count < configuration.capacity else { return false }
            s.queue.append(record)
            Self.ring(&s)
            return true
        }
        if !accepted { spill([record], reason: "queue full") }
    }

    /// Queues a call whose record is still to be built — its response parsed, its metrics
    /// taken — by `build`, which runs on the recorder's own thread, in the order of the calls
    /// to this method: the proxy's event loops hand a finished call over without parsing it.
    public func submit(building build: @escaping @Sendable () -> CallRecord) {
        builder.async { [self] in submit(build()) }
    }

    /// Queues a finished call and returns once it is committed to the database — in a batch
    /// with whatever else arrived (group commit) — or, when the database refuses it, written
    /// to the spool (`--durability sync`).
    public func submitAndWait(_ record: CallRecord) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let accepted = state.withLock { s -> Bool in
                guard s.queue.count < configuration.capacity else { return false }
                s.queue.append(record)
                s.committed[record.id] = continuation
                Self.ring(&s)
                return true
            }
            if !accepted {
                spill([record], reason: "queue full")
                continuation.resume()
            }
        }
    }

    /// Resumes the `submitAndWait` callers of these calls.
    private func settled(_ records: [CallRecord]) {
        let waiting = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            guard !s.committed.isEmpty else { return [] }
            return records.compactMap { s.committed.removeValue(forKey: $0.id) }
        }
        for continuation in waiting { continuation.resume() }
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { [self] in
                    // Wakes the writer to retry the spool while no new call arrives.
                    while !state.withLock({ $0.stopping }) {
                        try? await Task.sleep(for: configuration.retryInterval)
                        if !spool.isEmpty { state.withLock { Self.ring(&$0) } }
                    }
                }
                await writeLoop()
                state.withLock { $0.stopping = true }
                group.cancelAll()
            }
        } onGracefulShutdown: { [self] in
            state.withLock { s in
                s.stopping = true
                Self.ring(&s)
            }
        }
        // Drain: the records still being built, whatever is queued, then one more try at the spool.
        await withCheckedContinuation { (built: CheckedContinuation<Void, Never>) in builder.async { built.resume() } }
        await writeQueued()
        await replaySpool()
        let final = stats
        logger.info(
            "recorder stopped",
            metadata: [
                "llmtap.written": "\(final.written)", "llmtap.spooled": "\(final.spooled)",
                "llmtap.dropped": "\(final.dropped)",
            ])
    }

    private func writeLoop() async {
        while true {
            await waitForDoorbell()
            let (stopping, queued, waited) = state.withLock { ($0.stopping, $0.queue.count, !$0.committed.isEmpty) }
            if stopping { return }
            // A client waits on a sync call's commit: write now; calls that arrive meanwhile
            // go in the next transaction together (group commit).
            if queued > 0, queued < configuration.batchSize, !waited {
                try? await Task.sleep(for: configuration.flushInterval)
            }
            if !spool.isEmpty { await replaySpool() }
            await writeQueued()
        }
    }

    private func waitForDoorbell() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            state.withLock { s in
                if s.doorbell || s.stopping {
                    s.doorbell = false
                    continuation.resume()
                } else {
                    s.waiter = continuation
                }
            }
        }
    }

    private static func ring(_ s: inout State) {
        if let waiter = s.waiter {
            s.waiter = nil
            s.doorbell = false
            waiter.resume()
        } else {
            s.doorbell = true
        }
    }

    /// Writes the queue in batches until it is empty, preparing (serializing and
    /// compressing) each next batch while the previous one is being written.
    private func writeQueued() async {
        var current = takeBatch()
        guard !current.isEmpty else { return }
        reopenIfNeeded()
        var prepared: Store.PreparedBatch
        do {
            prepared = try await prepare(current)
        } catch {
            spill(current, reason: "payload compression failed")
            return
        }
        while true {
            let next = takeBatch()
            let toWrite = prepared
            async let written = store.write(toWrite)
            let nextPrepared = next.isEmpty ? nil : try? await prepare(next)
            do {
                let sessions = try await written
                settled(current)
                feed.publish(current, sessions: sessions)
                state.withLock { s in
                    s.stats.written += current.count
                    s.stats.batches += 1
                    s.stats.databaseHealthy = true
                }
            } catch {
                failed(error)
                logger.warning("database write failed, spooling", metadata: ["llmtap.error": "\(error)"])
                spill(current + next, reason: "database write failed")
                return  // the spool retry takes it from here
            }
            if next.isEmpty { return }
            guard let nextPrepared else {
                spill(next, reason: "payload compression failed")
                return
            }
            current = next
            prepared = nextPrepared
        }
    }

    private func prepare(_ batch: [CallRecord]) async throws -> Store.PreparedBatch {
        try await withCheckedThrowingContinuation { continuation in
            preparer.async { [store] in continuation.resume(with: Result { try store.prepare(batch) }) }
        }
    }

    private func takeBatch() -> [CallRecord] {
        state.withLock { s in
            let n = min(s.queue.count, configuration.batchSize)
            defer { s.queue.removeFirst(n) }
            return Array(s.queue.prefix(n))
        }
    }

    private func replaySpool() async {
        let records = spool.takeForReplay()
        guard !records.isEmpty else {
            spool.replayFinished()
            return
        }
        reopenIfNeeded()
        do {
            var sessions: [String: String] = [:]
            for start in stride(from: 0, to: records.count, by: configuration.batchSize) {
                let assigned = try await store.insert(Array(records[start..<min(start + configuration.batchSize, records.count)]))
                sessions.merge(assigned) { _, new in new }
            }
            spool.replayFinished()
            feed.publish(records, sessions: sessions)
            state.withLock { s in
                s.stats.replayed += records.count
                s.stats.written += records.count
                s.stats.databaseHealthy = true
            }
            logger.info("spool replayed", metadata: ["llmtap.calls": "\(records.count)"])
        } catch {
            failed(error)
        }
    }

    private func failed(_ error: any Error) {
        state.withLock { s in
            s.stats.failedWrites += 1
            s.stats.databaseHealthy = false
            if let error = error as? DatabaseError,
                [.SQLITE_READONLY, .SQLITE_IOERR, .SQLITE_CANTOPEN].contains(error.resultCode)
            {
                s.reopenWanted = true
            }
        }
    }

    /// Before a write: a database file deleted or replaced under llmtap (writes would go to an
    /// inode no one can open again), or one that refused writes as read-only, is opened afresh;
    /// a deleted one is created anew, empty and migrated, and the spool fills it.
    private func reopenIfNeeded() {
        let wanted = state.withLock { $0.reopenWanted }
        let replaced = store.fileWasReplaced
        guard wanted || replaced else { return }
        do {
            try store.reopen()
            state.withLock { s in
                s.reopenWanted = false
                s.stats.reopened += 1
            }
            logger.error(
                replaced ? "the database file was deleted or replaced while running: opened a new one at its path"
                    : "the database refused writes: opened it again",
                metadata: ["llmtap.db": "\(store.path)"])
        } catch {
            logger.warning("the database could not be opened again", metadata: ["llmtap.error": "\(error)"])
        }
    }

    private func spill(_ records: [CallRecord], reason: String) {
        let written = spool.append(records)
        settled(records)
        state.withLock { s in
            s.stats.spooled += written
            s.stats.dropped += records.count - written
        }
        if written < records.count {
            logger.error(
                "calls dropped: spool full or unwritable",
                metadata: ["llmtap.dropped": "\(records.count - written)", "llmtap.reason": "\(reason)"])
        }
    }
}
