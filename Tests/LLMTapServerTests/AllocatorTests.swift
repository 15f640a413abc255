import Foundation
import LLMTapTestSupport
import Logging
import ServiceLifecycle
import Synchronization
import Testing

@testable import LLMTapServer

#if canImport(Glibc)
import Glibc
#endif

struct AllocatorTests {
    /// Swift's own allocations go through jemalloc: linking it put its `malloc` first.
    @Test func theProcessAllocatesThroughJemalloc() throws {
        #expect(Allocator.version?.isEmpty == false)
        let before = try #require(Allocator.allocatedByThisThread)
        let block = [UInt8](repeating: 1, count: 4 << 20)
        let after = try #require(Allocator.allocatedByThisThread)
        #expect(after - before >= UInt64(block.count), "jemalloc handed this thread \(after - before) bytes")
    }

    #if canImport(Glibc)
    /// The tests that measure the process's memory, one at a time (a purge in one would hand
    /// back what the other freed).
    @Suite(.serialized) struct HandingBack {
        /// 64 MiB in 16 KiB blocks, every block freed but each 64th: jemalloc keeps the freed
        /// pages resident for its reuse (a second in llmtap) until a purge hands them back.
        @Test func aPurgeHandsBackWhatWasFreed() throws {
            let blocks = Fragmented()
            defer { blocks.release() }
            let before = try AllocatorTests.anonymousMemory()
            #expect(Allocator.purge())
            let after = try AllocatorTests.anonymousMemory()
            // ~63 MiB were freed; other tests running alongside allocate a few.
            #expect(before - after > 32 << 20, "resident anonymous memory \(before) → \(after) bytes")
        }

        /// With llmtap's decay, what a busy thread freed goes back within about a second, no purge
        /// needed. With jemalloc's own 10 s, 25 of the 63 MiB were back after 4 s.
        @Test func freedMemoryGoesBackWithinTheDecay() throws {
            #expect(Allocator.configure(userSettings: nil))
            let decay = try #require(Allocator.decay(ofArena: 0))
            #expect(decay.dirty == 1000 && decay.muzzy == 0)
            let blocks = Fragmented()
            defer { blocks.release() }
            let before = try AllocatorTests.anonymousMemory()
            let start = ContinuousClock.now
            var after = before
            while ContinuousClock.now - start < .seconds(4), before - after <= 40 << 20 {
                // jemalloc decays an arena as its threads allocate past their caches (as a busy proxy does).
                for _ in 0..<1_000 { free(malloc(64 << 10)) }
                usleep(20_000)
                after = try AllocatorTests.anonymousMemory()
            }
            #expect(before - after > 40 << 20, "resident anonymous memory \(before) → \(after) bytes")
        }

        /// jemalloc's counts follow what is held: a 1 GiB block adds its size to `allocated`
        /// (counted when handed out; left unwritten, it costs no memory), and `resident` covers
        /// what is allocated.
        @Test func theStatisticsCountWhatIsHeld() throws {
            let size = 1 << 30
            let before = try #require(Allocator.statistics())
            let block = try #require(malloc(size))
            defer { free(block) }
            let after = try #require(Allocator.statistics())
            // Other tests allocate and free alongside, tens of MiB at once (in CI one freed ~60
            // MiB between the two readings of a 64 MiB block): a margin of 256 MiB.
            #expect(after.allocated - before.allocated > size - (256 << 20), "allocated \(before.allocated) → \(after.allocated)")
            #expect(after.resident >= after.allocated, "resident \(after.resident), allocated \(after.allocated)")
        }

        /// A user's own `MALLOC_CONF` is left alone.
        @Test func aUsersOwnSettingsWin() {
            #expect(!Allocator.configure(userSettings: "dirty_decay_ms:5000"))
        }
    }

    /// 64 MiB in 16 KiB blocks, written, then every block freed but each 64th.
    struct Fragmented {
        static let size = 16 << 10
        let kept: [UnsafeMutableRawPointer]

        init() {
            let blocks = (0..<4096).map { _ in malloc(Self.size)! }
            for block in blocks { memset(block, 1, Self.size) }
            for (index, block) in blocks.enumerated() where index % 64 != 63 { free(block) }
            kept = blocks.enumerated().filter { $0.offset % 64 == 63 }.map(\.element)
        }

        func release() { for block in kept { free(block) } }
    }

    /// `RssAnon` of /proc/self/status, in bytes.
    static func anonymousMemory() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("RssAnon:") })
        return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])) * 1024
    }
    #endif

    /// A quiet spell begins at the first reading that repeats the one before it, and is told once.
    @Test func aQuietSpellIsToldOncePerSpell() {
        var quiet = QuietSpell()
        let readings = [0, 0, 0, 5, 9, 9, 9, 12, 12]
        let began = readings.map { quiet.began(activity: $0) }
        #expect(began == [false, true, false, false, false, true, false, false, true])
    }

    /// The service purges when the activity count stops moving, not while it moves, and returns
    /// at a graceful shutdown.
    @Test func theServicePurgesWhenCallsStopAndStopsAtShutdown() async throws {
        let purges = Atomic<Int>(0)
        let calls = Atomic<Int>(0)
        let service = AllocatorPurgeService(
            interval: .milliseconds(20), activity: { calls.load(ordering: .relaxed) },
            purge: {
                purges.add(1, ordering: .relaxed)
                return true
            },
            logger: Logger(label: "test"))
        let group = ServiceGroup(configuration: .init(services: [service], logger: Logger(label: "test")))
        let running = Task { try await group.run() }
        #expect(await eventually { purges.load(ordering: .relaxed) == 1 })
        calls.add(1, ordering: .relaxed)  // a call, then quiet again: one more purge
        #expect(await eventually { purges.load(ordering: .relaxed) == 2 })
        try await Task.sleep(for: .milliseconds(100))
        #expect(purges.load(ordering: .relaxed) == 2)  // still quiet: no purge again
        await group.triggerGracefulShutdown()
        try await running.value
    }
}
