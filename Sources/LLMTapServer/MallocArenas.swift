import CMalloc
import Foundation

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
}
