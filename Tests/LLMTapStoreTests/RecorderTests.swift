import Foundation
import GRDB
import LLMTapCore
import LLMTapStore
import LLMTapTestSupport
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

/// Runs the recorder until `count` calls are written, then shuts it down gracefully.
func runUntilWritten(_ recorder: Recorder, count: Int) async throws {
    try await testGracefulShutdown { trigger in
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await recorder.run() }
            _ = await eventually { recorder.stats.written >= count }
            trigger.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }
}

/// A test's recorder: a fresh store and spool in a directory of its own (`remove()` it when done).
struct RecorderFixture {
    let directory: TestDirectory
    let store: Store
    let spool: Spool
    let recorder: Recorder

    init(busyTimeout: TimeInterval = 0.25, _ configure: (inout Recorder.Configuration) -> Void = { _ in }) throws {
        directory = try TestDirectory()
        store = try Store(path: directory.databasePath, busyTimeout: busyTimeout)
        spool = Spool(path: directory.spoolPath)
        var configuration = Recorder.Configuration()
        configure(&configuration)
        recorder = Recorder(store: store, spool: spool, configuration: configuration, logger: testLogger)
    }

    func remove() { directory.remove() }
}

struct RecorderTests {
    @Test func writesInBatchesAndKeepsExactPayloads() async throws {
        let fixture = try RecorderFixture()
        defer { fixture.remove() }
        let (store, recorder) = (fixture.store, fixture.recorder)
        let records = (0..<2000).map { sampleRecord($0, payload: String(repeating: "{\"role\":\"user\"}", count: $0 % 50)) }
        for record in records { recorder.submit(record) }
        try await runUntilWritten(recorder, count: records.count)

        let stats = recorder.stats
        #expect(stats.written == 2000)
        #expect(stats.batches < 100)  // batched, not one transaction per call
        #expect(stats.dropped == 0 && stats.spooled == 0)
        #expect(try store.callCount() == 2000)
        for record in [records[0], records[777], records[1999]] {
            let stored = try #require(try store.call(id: record.id))
            #expect(stored == record)  // every field, payload bytes included
        }
    }

    /// Under a steady stream of calls the writer is never idle long, and each next batch was
    /// taken while the one before was written: it held the few calls that came meanwhile. A
    /// batch is now taken once its first call has waited `flushInterval` (or it is full): about
    /// one transaction per window, every call still written within a window of its batch.
    @Test func aSteadyTrickleIsWrittenAboutOneBatchPerWindow() async throws {
        let fixture = try RecorderFixture { $0.flushInterval = .milliseconds(50) }
        defer { fixture.remove() }
        let (store, recorder) = (fixture.store, fixture.recorder)
        let calls = 900
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await recorder.run() }
                let start = ContinuousClock.now
                for n in stride(from: 0, to: calls, by: 3) {
                    for k in n..<n + 3 { recorder.submit(sampleRecord(k)) }
                    try await Task.sleep(until: start + .milliseconds(n / 3 + 1))
                }
                let elapsed = ContinuousClock.now - start
                #expect(await eventually { recorder.stats.written == calls })
                let windows = Int(elapsed / .milliseconds(50)) + 1
                #expect(recorder.stats.batches <= windows + 2, "\(recorder.stats.batches) batches in \(elapsed)")
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        #expect(try store.callCount() == calls)
    }

    /// `submitLeavingWake`: the writer sleeps until the caller rings (an event loop rings from
    /// a timer when the batch window has passed), and only one caller of a batch is asked to.
    @Test func aCallQueuedWithoutAWakeIsWrittenWhenTheCallerRings() async throws {
        let fixture = try RecorderFixture {
            $0.flushInterval = .milliseconds(100)
            $0.retryInterval = .seconds(3600)  // its safety-net ring stays out of the way
        }
        defer { fixture.remove() }
        let (store, recorder) = (fixture.store, fixture.recorder)
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await recorder.run() }
                // While the writer is busy (just started, or writing), it finds the call itself and
                // nobody is asked to ring; once it sleeps, the first caller is.
                var submitted = 0
                var asked = false
                while !asked, submitted < 50 {
                    submitted += 1
                    let n = submitted
                    asked = recorder.submitLeavingWake(bytes: 10) { sampleRecord(n) }
                    if !asked { #expect(await eventually { recorder.stats.written == submitted }) }
                }
                #expect(asked)
                submitted += 1
                let n = submitted
                #expect(!recorder.submitLeavingWake(bytes: 10) { sampleRecord(n) })  // already asked
                try await Task.sleep(for: .milliseconds(400))  // four batch windows: nothing wakes the writer
                #expect(recorder.stats.written == submitted - 2)
                recorder.ring()
                #expect(await eventually { recorder.stats.written == submitted })
                #expect(try store.callCount() == submitted)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
    }

    /// `testGracefulShutdown`: calls submitted right before shutdown are all written.
    @Test func gracefulShutdownDrainsTheQueue() async throws {
        let fixture = try RecorderFixture {
            $0.flushInterval = .seconds(5)  // nothing would be written before shutdown but for the drain
            $0.batchSize = 10_000
        }
        defer { fixture.remove() }
        let (store, recorder) = (fixture.store, fixture.recorder)
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await recorder.run() }
                for n in 0..<300 { recorder.submit(sampleRecord(n)) }
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        #expect(try store.callCount() == 300)
    }

    /// Another connection holds the write lock: calls go to the spool, and into the database once it is free.
    @Test func spoolsWhileLockedThenReplays() async throws {
        let fixture = try RecorderFixture(busyTimeout: 0.05) { $0.retryInterval = .milliseconds(50) }
        defer { fixture.remove() }
        let (store, spool, recorder) = (fixture.store, fixture.spool, fixture.recorder)
        var lockerConfiguration = Configuration()
        lockerConfiguration.allowsUnsafeTransactions = true  // a transaction held open across accesses, on purpose
        let locker = try DatabaseQueue(path: fixture.directory.databasePath, configuration: lockerConfiguration)
        let release = AsyncStream<Void>.makeStream()
        let records = (0..<50).map { sampleRecord($0) }

        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await recorder.run() }
                group.addTask {
                    // Hold the write lock until told to let go.
                    try await locker.writeWithoutTransaction { db in
                        try db.execute(sql: "BEGIN IMMEDIATE")
                    }
                    var iterator = release.stream.makeAsyncIterator()
                    _ = await iterator.next()
                    try await locker.writeWithoutTransaction { db in try db.execute(sql: "COMMIT") }
                }
                try await Task.sleep(for: .milliseconds(100))
                for record in records { recorder.submit(record) }
                #expect(await eventually { recorder.stats.spooled == 50 })
                #expect(!recorder.stats.databaseHealthy)
                #expect(spool.count == 50)
                #expect(try store.callCount() == 0)

                release.continuation.yield()
                #expect(await eventually { recorder.stats.replayed == 50 })
                #expect(try store.callCount() == 50)
                #expect(spool.isEmpty)
                #expect(recorder.stats.databaseHealthy)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        // Replayed calls keep every field and their exact payload bytes.
        #expect(try store.call(id: records[7].id) == records[7])
        #expect(recorder.stats.dropped == 0)
    }

    /// A cancelled recorder returns (its spool-retry loop used to spin a core each once its
    /// task was cancelled, and `run` never returned) and loses nothing: what it did not
    /// write is in the spool.
    @Test func aCancelledRecorderReturnsAndLosesNothing() async throws {
        let fixture = try RecorderFixture { $0.retryInterval = .milliseconds(20) }
        defer { fixture.remove() }
        let (spool, recorder) = (fixture.spool, fixture.recorder)
        let runner = Task { try await recorder.run() }
        for n in 0..<10 { recorder.submit(sampleRecord(n)) }
        #expect(await eventually { recorder.stats.written == 10 })
        for n in 10..<20 { recorder.submit(sampleRecord(n)) }
        runner.cancel()
        let returned = Mutex(false)
        let waiter = Task {
            try? await runner.value
            returned.withLock { $0 = true }
        }
        #expect(await eventually { returned.withLock { $0 } })
        waiter.cancel()
        #expect(recorder.stats.written + spool.count == 20)
        #expect(recorder.stats.dropped == 0)
    }

    @Test func queueOverflowGoesToTheSpoolNotToNothing() async throws {
        let fixture = try RecorderFixture { $0.capacity = 10 }
        defer { fixture.remove() }
        let (store, recorder) = (fixture.store, fixture.recorder)
        for n in 0..<25 { recorder.submit(sampleRecord(n)) }  // not running yet: 10 queued, 15 spilled
        #expect(recorder.stats.spooled == 15)
        try await runUntilWritten(recorder, count: 25)
        #expect(try store.callCount() == 25)
        #expect(recorder.stats.dropped == 0)
    }

    /// The queue is bounded by its bodies' bytes too: a lagging database cannot make long
    /// contexts take the memory a count of calls allows.
    @Test func bodiesOverTheQueuesBytesGoToTheSpool() async throws {
        let records = (0..<25).map { sampleRecord($0) }
        let bytes = records[0].requestBody.count + records[0].responseBody.count
        #expect(bytes > 0)
        let fixture = try RecorderFixture { $0.capacityBytes = 4 * bytes }
        defer { fixture.remove() }
        let (store, recorder) = (fixture.store, fixture.recorder)
        for record in records {
            // Not running: nobody to wake, so no caller is asked to ring.
            #expect(!recorder.submitLeavingWake(bytes: record.requestBody.count + record.responseBody.count) { record })
        }
        #expect(recorder.stats.queued == 4)  // not running yet
        #expect(recorder.stats.spooled == 21)
        try await runUntilWritten(recorder, count: 25)
        #expect(try store.callCount() == 25)
        #expect(recorder.stats.dropped == 0)
    }

    /// A batch prepared in parts on several threads is written whole and in the order the
    /// calls came, with each call's exact bodies and a chain that verifies.
    @Test func aBatchPreparedInPartsKeepsItsOrder() async throws {
        let fixture = try RecorderFixture { $0.preparingParts = 3 }
        defer { fixture.remove() }
        let (store, recorder) = (fixture.store, fixture.recorder)
        let records = (0..<300).map { n in
            // Calls of a few conversations sharing a system prompt: messages and fragments that
            // parts of one batch both meet.
            let messages = #"[{"role":"system","content":"You are terse."},{"role":"user","content":"question \#(n % 7)"}]"#
            var record = sampleRecord(n, payload: #"{"model":"gpt-4o-mini","messages":\#(messages)}"#)
            record.context = JSONValue.parse(Array(messages.utf8))
            return record
        }
        for record in records { recorder.submit(record) }  // not running yet: one batch of 300
        try await runUntilWritten(recorder, count: 300)
        #expect(recorder.stats.batches == 1)
        let stored = try store.calls(afterRowID: 0, limit: 1000).calls
        #expect(stored.count == 300)
        #expect(stored.map(\.id).elementsEqual(records.map(\.id)), "written out of order")
        for n in [0, 99, 100, 101, 199, 200, 299] {
            let call = try #require(try store.call(id: records[n].id))
            #expect(call.requestBody == records[n].requestBody)
            #expect(call.responseBody == records[n].responseBody)
        }
        let report = try store.verifyChain()
        #expect(report.verified == 300 && report.broken == nil)
    }

    @Test func aFullSpoolCountsWhatItDrops() throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let spool = Spool(path: directory.spoolPath, maxBytes: 2_000)
        let written = spool.append((0..<20).map { sampleRecord($0) })
        #expect(written > 0 && written < 20)
        #expect(spool.count == written)
    }
}
