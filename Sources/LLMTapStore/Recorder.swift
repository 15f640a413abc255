import DequeModule
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
        /// Bytes of request and response bodies held in memory before spilling to the spool: a
        /// count alone let 20,000 calls with long contexts take gigabytes while the database
        /// lagged (a queued call holds ~2 × its bodies, parsed; one call is always taken).
        public var capacityBytes: Int = 64 << 20
        /// A batch's records are built, compressed and written together: 512 calls write as fast
        /// as 2,048 (`llmtap-bench`) with a quarter as many in memory at once.
        public var batchSize: Int = 512
        /// How long the first call of a batch may wait for others.
        public var flushInterval: Duration = .milliseconds(10)
        /// Threads a large batch is prepared on; nil: as many as there are cores (up to four)
        /// while preparing a call takes longer than writing it, else one.
        public var preparingParts: Int? = nil
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
        /// Seconds of the longest write transaction so far: how long a call under
        /// `--durability sync` may wait on others' writes.
        public var longestWrite = 0.0
    }

    /// A queued call: its record, or how to build it (`submit(building:)`).
    private enum Queued: Sendable {
        case record(CallRecord)
        case build(@Sendable () -> CallRecord, bytes: Int)

        /// Its bodies' size, for `capacityBytes`.
        var bytes: Int {
            switch self {
            case .record(let record): record.requestBody.count + record.responseBody.count
            case .build(_, let bytes): bytes
            }
        }

        var record: CallRecord {
            switch self {
            case .record(let record): record
            case .build(let build, _): build()
            }
        }
    }

    private struct State {
        /// A deque, not an array: taking a batch from an array's front moved every call behind
        /// it (`Queued` holds a whole `CallRecord` inline), which with a backlog cost more than
        /// preparing the batch (llmtap-bench queues its whole load at once: 300 k calls).
        var queue = Deque<Queued>()
        /// The bodies' bytes in `queue`.
        var queuedBytes = 0
        var stats = Stats()
        var waiter: CheckedContinuation<Void, Never>?
        var doorbell = false
        /// A caller of `submitLeavingWake` was told to `ring`: later calls need not be.
        var ringPromised = false
        /// When the oldest call in `queue` arrived (nil when empty): a batch waits up to
        /// `flushInterval` from there for more calls.
        var openedAt: ContinuousClock.Instant?
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
    /// How long preparing and writing a call took of late (`prepare` splits a batch when the
    /// first is the longer).
    private let pace = Mutex((prepare: 0.0, write: 0.0))

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

    /// Nanoseconds per call of late (smoothed over batches): preparing it (the preparing threads'
    /// wall time, summed) and writing it (the write transaction's wall time). Both are CPU only
    /// while the threads have cores to themselves: a thread waiting for one counts as busy. The
    /// writer is one thread, so 1 s / `writing` bounds the ingest rate.
    public var costPerCall: (preparing: Double, writing: Double) {
        pace.withLock { ($0.prepare, $0.write) }
    }

    /// Queues a finished call; never blocks on the database.
    public func submit(_ record: CallRecord) {
        enqueue(.record(record), wake: true)
    }

    /// Queues a call whose record is still to be built — its response parsed, its metrics
    /// taken — by `build`, which runs on the recorder's thread with the rest of its batch
    /// (`prepare`): the proxy's event loops hand a finished call over without parsing it.
    /// It wakes no thread now: returns true when the caller must call `ring()`, within about
    /// `flushInterval` (the writer sleeps and no one else was told to wake it). An event loop
    /// that ends a call wakes the writer from a timer of its own: waking it at once put two
    /// threads' work (the wake, then the writer's sleep through the batch window) on the loop's
    /// core just as a client sends its next request (`perf sched`; with lighter header lookups
    /// on the loop, the first byte of 20-chunk streams at 10 calls/s went from ~0.72 to ~0.55 ms).
    /// - Parameter bytes: the size of the call's request and response bodies.
    public func submitLeavingWake(bytes: Int, building build: @escaping @Sendable () -> CallRecord) -> Bool {
        enqueue(.build(build, bytes: bytes), wake: false)
    }

    /// How long the first call of a batch waits for others.
    public var flushInterval: Duration { configuration.flushInterval }

    /// Wakes the writer for what `submitLeavingWake` queued.
    public func ring() {
        state.withLock { Self.ring(&$0) }
    }

    @discardableResult
    private func enqueue(_ call: Queued, wake: Bool) -> Bool {
        let accepted = state.withLock { s -> Bool? in
            guard Self.hasRoom(for: call, in: s, configuration) else { return nil }
            Self.append(call, to: &s)
            if wake {
                Self.ring(&s)
                return false
            }
            s.doorbell = true  // seen when the writer looks next, whoever wakes it
            guard s.waiter != nil, !s.ringPromised else { return false }
            s.ringPromised = true
            return true
        }
        guard let accepted else {
            spill([call.record], reason: "queue full")
            return false
        }
        return accepted
    }

    /// Queues a finished call and returns once it is committed to the database — in a batch
    /// with whatever else arrived (group commit) — or, when the database refuses it, written
    /// to the spool (`--durability sync`).
    public func submitAndWait(_ record: CallRecord) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let call = Queued.record(record)
            let accepted = state.withLock { s -> Bool in
                guard Self.hasRoom(for: call, in: s, configuration) else { return false }
                Self.append(call, to: &s)
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

    /// Queues a call that `hasRoom`; the first of a batch opens its window.
    private static func append(_ call: Queued, to s: inout State) {
        if s.queue.isEmpty { s.openedAt = .now }
        s.queue.append(call)
        s.queuedBytes += call.bytes
    }

    private static func hasRoom(for call: Queued, in s: State, _ configuration: Configuration) -> Bool {
        s.queue.count < configuration.capacity
            && (s.queue.isEmpty || s.queuedBytes + call.bytes <= configuration.capacityBytes)
    }

    /// Resumes the `submitAndWait` callers of these calls.
    private func settled(_ records: [CallRecord]) {
        let waiting = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            guard !s.committed.isEmpty else { return [] }
            return records.compactMap { s.committed.removeValue(forKey: $0.id) }
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Runs until graceful shutdown, or until its task is cancelled: either way it stops
    /// taking new work and drains (a cancelled task's database writes fail at once, so what
    /// is queued goes to the spool).
    public func run() async throws {
        let stop: @Sendable () -> Void = { [self] in
            state.withLock { s in
                s.stopping = true
                Self.ring(&s)
            }
        }
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await withDiscardingTaskGroup { group in
                    group.addTask { [self] in
                        // Wakes the writer to retry the spool while no new call arrives. Not past a
                        // cancellation: the sleep would return at once and this loop spin (it did,
                        // a core each, in a test whose recorder task was cancelled).
                        while !state.withLock({ $0.stopping }), !Task.isCancelled {
                            try? await Task.sleep(for: configuration.retryInterval)
                            // The spool, and a call whose promised ring never came (its event loop closed first).
                            state.withLock { s in
                                if !spool.isEmpty || (!s.queue.isEmpty && s.waiter != nil) { Self.ring(&s) }
                            }
                        }
                    }
                    await writeLoop()
                    state.withLock { $0.stopping = true }
                    group.cancelAll()
                }
            } onGracefulShutdown: {
                stop()
            }
        } onCancel: {
            stop()
        }
        // Drain: whatever is still queued, then one more try at the spool.
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
            let stopping = state.withLock { s in
                s.ringPromised = false
                return s.stopping
            }
            if stopping { return }
            await waitUntilBatchDue()
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

    /// Writes the queue in batches until it is empty, preparing (building, serializing and
    /// compressing) each next batch while the previous one is being written.
    private func writeQueued() async {
        let first = takeBatch()
        guard !first.calls.isEmpty else { return }
        reopenIfNeeded()
        var (current, prepared) = await prepare(first)
        // The batch written last, freed once the next write has started — while it runs, not
        // between the two: freeing 512 calls (bodies, contexts, prepared rows: thousands of
        // objects) took ~1 ms a batch while the writer waited.
        var retired: (records: [CallRecord], batch: Store.PreparedBatch?)?
        while true {
            guard let toWrite = prepared else {
                spill(current, reason: "payload compression failed")
                return
            }
            async let written = timedWrite(toWrite)
            // Kept to here: without this the optimizer frees it at its last use, between the writes.
            withExtendedLifetime(retired) {}
            retired = nil
            let next = await takeBatchWhenDue()
            let nextPrepared = next.calls.isEmpty ? nil : await prepare(next)
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
                spill(current + (nextPrepared?.records ?? []), reason: "database write failed")
                return  // the spool retry takes it from here
            }
            guard let nextPrepared else { return }
            retired = (current, prepared)
            (current, prepared) = nextPrepared
        }
    }

    private func timedWrite(_ batch: Store.PreparedBatch) async throws -> [String: String] {
        let start = DispatchTime.now().uptimeNanoseconds
        let sessions = try await store.write(batch)
        let took = DispatchTime.now().uptimeNanoseconds - start
        pace.withLock { $0.write = Self.smoothed($0.write, took, batch.count) }
        state.withLock { $0.stats.longestWrite = max($0.stats.longestWrite, Double(took) / 1e9) }
        return sessions
    }

    /// Nanoseconds per call, smoothed over batches.
    private static func smoothed(_ old: Double, _ nanoseconds: UInt64, _ calls: Int) -> Double {
        let now = Double(nanoseconds) / Double(max(calls, 1))
        return old == 0 ? now : old * 0.7 + now * 0.3
    }

    /// Builds a batch's records and prepares them for the write, off Swift's cooperative pool;
    /// `batch` is nil when preparing failed. While preparing a call takes longer than writing
    /// it — long conversations: hashing and compressing their messages — a large batch is
    /// prepared in parts on as many threads as there are cores (up to four), and the writer no
    /// longer waits on one preparing thread (20-turn session corpus: 4.7 – 4.9 k → 5.1 – 5.6 k
    /// calls/s). Small calls, whose write is the longer part, stay on one thread: there a second
    /// preparing thread only took the writer's core (11.3 k → 9.6 k calls/s).
    private func prepare(_ taken: Taken) async -> (records: [CallRecord], batch: Store.PreparedBatch?) {
        let pace = pace.withLock { $0 }
        let parts = min(
            configuration.preparingParts ?? (pace.prepare > pace.write ? Self.cores : 1), taken.calls.count / Self.minimumPart)
        return await withCheckedContinuation { continuation in
            preparer.async { [self] in
                let queued = taken.calls
                taken.calls = []  // built below, freed on this thread when `queued` goes
                let size = (queued.count + max(parts, 1) - 1) / max(parts, 1)
                let results = Mutex([(records: [CallRecord], batch: Store.PreparedBatch?)?](repeating: nil, count: max(parts, 1)))
                let busy = Atomic<UInt64>(0)
                let work: @Sendable (Int) -> Void = { part in
                    let start = DispatchTime.now().uptimeNanoseconds
                    let records = queued[(part * size)..<min(queued.count, (part + 1) * size)].map(\.record)
                    let batch = try? self.store.prepare(records)
                    results.withLock { $0[part] = (records, batch) }
                    busy.add(DispatchTime.now().uptimeNanoseconds - start, ordering: .relaxed)
                }
                if parts > 1 { DispatchQueue.concurrentPerform(iterations: parts, execute: work) } else { work(0) }
                self.pace.withLock { $0.prepare = Self.smoothed($0.prepare, busy.load(ordering: .relaxed), queued.count) }
                let done = results.withLock { $0 }.compactMap { $0 }
                let records = done.flatMap(\.records)
                let failed = done.contains { $0.batch == nil }
                continuation.resume(
                    returning: (records, failed ? nil : Store.PreparedBatch(calls: done.flatMap { $0.batch!.calls })))
            }
        }
    }

    private static let cores = min(4, ProcessInfo.processInfo.activeProcessorCount)
    /// Fewer calls than this are prepared on one thread: the hand-off would cost more.
    private static let minimumPart = 64

    /// Calls taken from the queue for one batch, held only here: the preparing thread takes
    /// them out, so what they hold (bodies, the closures that build their records) is freed on
    /// that thread once their records are built, while a write runs. Unchecked: the loop reads
    /// it before handing it to the preparing thread, that thread after, never both at once.
    private final class Taken: @unchecked Sendable {
        var calls: [Queued]
        init(_ calls: [Queued]) { self.calls = calls }
    }

    /// The next batch, taken while the one before is written once it is due (`waitUntilBatchDue`),
    /// as the idle writer takes its first. Taken at once, a batch held what came in while the
    /// one before was prepared: 20-chunk streams at 32 connections were written 27 calls a
    /// transaction, 174 transactions a second, each with its rollup upserts and hand-offs
    /// between threads.
    private func takeBatchWhenDue() async -> Taken {
        await waitUntilBatchDue()
        return takeBatch()
    }

    /// Waits, when the queue is not yet a full batch, until its first call has waited
    /// `flushInterval` for others (a late ring comes after it). A client waiting on a sync
    /// call's commit, or the recorder stopping, ends no wait already begun, but starts none:
    /// the batch goes now, and calls that arrive meanwhile go in the next transaction together
    /// (group commit).
    private func waitUntilBatchDue() async {
        let rest = state.withLock { s -> Duration? in
            guard let openedAt = s.openedAt, !s.queue.isEmpty, s.queue.count < configuration.batchSize,
                s.committed.isEmpty, !s.stopping
            else { return nil }
            return configuration.flushInterval - (ContinuousClock.now - openedAt)
        }
        if let rest, rest > .zero { try? await Task.sleep(for: rest) }
    }

    private func takeBatch() -> Taken {
        state.withLock { s in
            let n = min(s.queue.count, configuration.batchSize)
            let batch = Array(s.queue.prefix(n))
            s.queue.removeFirst(n)
            s.queuedBytes -= batch.reduce(0) { $0 + $1.bytes }
            s.openedAt = s.queue.isEmpty ? nil : .now
            return Taken(batch)
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
