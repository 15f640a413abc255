import Foundation
import GRDB
import LLMTapCore
@testable import LLMTapStore
import LLMTapTestSupport
import Testing

/// The write-ahead log is copied into the database file beside the writer (`Checkpointer`),
/// not in the writer's commits.
struct CheckpointerTests {
    /// One call per write until the log holds `pages` pages; the calls written.
    static func write(_ store: Store, until pages: Int, from n: inout Int) async throws -> [CallRecord] {
        var written: [CallRecord] = []
        while store.checkpointer.counts.logPages < pages {
            let call = sampleRecord(n, payload: #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"call \#(n)"}]}"#)
            try await store.insert([call])
            written.append(call)
            n += 1
            #expect(n < 10_000)
            if n >= 10_000 { break }
        }
        return written
    }

    /// A store on a migrated database whose log is empty (the migration's own went into the file
    /// as the first store closed), checkpointing at 256 KiB of log: 32 pages of 8 KiB.
    static func store(in directory: TestDirectory) throws -> Store {
        try Store(path: directory.databasePath).close()
        return try Store(path: directory.databasePath, checkpointAt: 256 << 10)
    }

    @Test func theWriterCommitsWhileACheckpointWaitsAndTheLogStartsOverAfterIt() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let store = try Self.store(in: directory)
        var n = 0
        store.checkpointer.suspend()  // a checkpoint that takes its time
        var calls = try await Self.write(store, until: 32, from: &n)
        // Past the threshold, the commits went on without checkpointing.
        #expect(store.checkpointer.counts.logPages >= 32 && store.checkpointer.counts.logPages < 4 * 32)
        calls += try await Self.write(store, until: store.checkpointer.counts.logPages + 4, from: &n)
        #expect(store.checkpointer.counts.background == 0 && store.checkpointer.counts.inWriter == 0)
        store.checkpointer.resume()
        #expect(await eventually { store.checkpointer.counts.background >= 1 })
        // The next write starts the log over: it holds that write's pages only.
        calls.append(sampleRecord(n))
        try await store.insert([calls.last!])
        #expect(store.checkpointer.counts.logPages < 32)
        for call in calls { #expect(try store.call(id: call.id)?.requestBody == call.requestBody) }
        #expect(try store.integrityCheck() == "ok")
        #expect(try store.verifyChain().broken == nil)
        try store.close()
    }

    /// Checkpoints held back (a reader that never ends would do it): at four times the
    /// threshold the writer checkpoints in its commit, and the log does not grow on.
    @Test func theWriterCheckpointsItselfWhenTheLogRunsAway() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let store = try Self.store(in: directory)
        var n = 0
        store.checkpointer.suspend()
        var calls = try await Self.write(store, until: 4 * 32, from: &n)
        #expect(store.checkpointer.counts.inWriter == 1 && store.checkpointer.counts.background == 0)
        // Copied whole: the log starts over at the next write.
        calls.append(sampleRecord(n))
        try await store.insert([calls.last!])
        #expect(store.checkpointer.counts.logPages < 32)
        store.checkpointer.resume()
        for call in calls { #expect(try store.call(id: call.id)?.requestBody == call.requestBody) }
        #expect(try store.integrityCheck() == "ok")
        try store.close()
    }
}
