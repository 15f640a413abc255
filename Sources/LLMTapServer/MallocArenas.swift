import CMalloc
import Foundation
import Logging
import ServiceLifecycle

/// glibc gives each thread that meets contention an allocation arena of its own, up to eight
/// per core, and keeps what is freed in each for reuse: with two event loops, the recorder's
/// preparing threads and its writer all allocating, a 400 k-call soak at 32 connections
/// kept climbing after warm-up (+22 % anonymous memory) though nothing llmtap holds grew.
/// As many arenas as cores held it to +12 %, at the same throughput (`Benchmarks/soak.sh`).
/// A `MALLOC_ARENA_MAX` in the environment is glibc's own and wins.
public enum MallocArenas {
    /// Call before the server starts its threads.
    public static func limitToCores(environment: [String: String] = ProcessInfo.processInfo.environment) {
        #if canImport(Glibc)
        guard environment["MALLOC_ARENA_MAX"] == nil else { return }
        _ = mallopt(M_ARENA_MAX, Int32(max(2, ProcessInfo.processInfo.activeProcessorCount)))
        #endif
    }

    /// Hands the whole free pages inside every arena back to the kernel. glibc returns memory on
    /// its own only from the top of a heap; what a burst freed below live blocks stays resident.
    /// A 1 M-call soak grew from 28.2 MiB after warm-up to 37.2 MiB (the recorder's batches grow
    /// as its transactions slow), and one `malloc_trim` at its end brought it to 25.4 MiB: free
    /// memory, not a leak. Returns whether any memory was released.
    @discardableResult
    public static func trim() -> Bool {
        #if canImport(Glibc)
        return malloc_trim(0) == 1
        #else
        return false
        #endif
    }
}

/// Trims the allocator's arenas (`MallocArenas.trim`) once the proxy has been quiet — no call
/// recorded over a whole `interval` — so a daemon idle after a burst gives the burst's memory
/// back. Not under load: there a trim took 0.35 – 15 ms (it holds each arena's lock while it
/// walks the free chunks, and every thread that allocates waits), and the pages it released
/// were faulted back within seconds — trimming every second in a 1 M-call soak left the
/// sampled RSS no lower.
struct MallocTrimService: Service {
    var interval: Duration = .seconds(10)
    /// A count that moves while calls are recorded.
    let activity: @Sendable () -> Int
    var trim: @Sendable () -> Bool = { MallocArenas.trim() }
    let logger: Logger

    func run() async {
        await cancelWhenGracefulShutdown {
            var quiet = QuietSpell()
            while (try? await Task.sleep(for: interval)) != nil {
                guard quiet.began(activity: activity()) else { continue }
                let start = ContinuousClock.now
                let released = trim()
                logger.debug("malloc arenas trimmed", metadata: [
                    "llmtap.released": "\(released)", "llmtap.duration": "\(ContinuousClock.now - start)",
                ])
            }
        }
    }
}

/// Watches an activity count read at a steady interval for the start of a quiet spell.
struct QuietSpell {
    private var last: Int?
    private var announced = false

    /// True once per spell: the first reading equal to the one before it after a change (or
    /// since the start).
    mutating func began(activity: Int) -> Bool {
        defer { last = activity }
        guard activity == last else {
            announced = false
            return false
        }
        guard !announced else { return false }
        announced = true
        return true
    }
}
