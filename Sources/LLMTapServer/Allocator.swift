import CJemalloc
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import ServiceLifecycle

/// llmtap runs on jemalloc (linked: its `malloc` comes before glibc's for the whole process).
///
/// Why not glibc's allocator: under load it kept what was freed spread over its heaps. In a
/// 600 k-call soak at 32 connections (`Benchmarks/soak.sh`), the bytes in use (`mallinfo2`,
/// sampled every 100 ms) stayed at 9 – 14 MiB while glibc's heaps grew from 12 to 27 MiB and
/// the process's anonymous memory by 28 – 34 % after warm-up, whatever the arenas (one: +19 %,
/// and 6 % fewer calls a second) or fast bins (off: +21 %). jemalloc gives unused pages back
/// on its own (after ~10 s by default; a second in llmtap, `decay`): the same soak ended +5 %
/// over warm-up, and the proxy took ~10 % less CPU a call (non-stream calls at 32
/// connections: 154 – 165 against 169 – 192 µs).
public enum Allocator {
    /// jemalloc's version, read from jemalloc itself.
    public static var version: String? {
        read("version", UnsafePointer<CChar>?.none).flatMap { $0 }.map { String(cString: $0) }
    }

    /// Bytes jemalloc has handed this thread so far (nil: jemalloc keeps no statistics). It
    /// moves only when allocations go through jemalloc.
    static var allocatedByThisThread: UInt64? {
        read("thread.allocated", UInt64(0))
    }

    /// jemalloc's counts, brought up to date now: the bytes llmtap's code holds (`allocated`) and
    /// the bytes of memory jemalloc keeps resident (`resident`: what is held, jemalloc's own
    /// metadata, and freed pages not yet handed back). Their difference is what the allocator,
    /// not llmtap, keeps. Nil when jemalloc keeps no statistics.
    public static func statistics() -> (allocated: Int, resident: Int)? {
        guard write("epoch", UInt64(1)),  // writing any value refreshes the counts
            let allocated = read("stats.allocated", 0),  // size_t
            let resident = read("stats.resident", 0)
        else { return nil }
        return (allocated, resident)
    }

    /// How long jemalloc keeps a freed page resident for reuse before handing it back, in llmtap:
    /// a second, not jemalloc's 10 s. Under load, memory freed after a burst (calls queued
    /// behind a slow write, then built and written together) stayed resident for those 10 s: a
    /// 600 k-call soak sampled every 5 s showed one-sample peaks of +25 % over its level; with a
    /// second, +4 %. It costs ~0.35 more page faults a call (27 k against 8 k in 6 s at 32
    /// connections), no CPU the harness could tell from noise.
    static let decay = Duration.seconds(1)

    /// Sets the decay (`decay`) of every arena and of those created later, unless the user tuned
    /// jemalloc themselves (`MALLOC_CONF`). Returns whether jemalloc took it.
    @discardableResult
    public static func configure(userSettings: String? = getenv("MALLOC_CONF").map { String(cString: $0) }) -> Bool {
        guard userSettings == nil else { return false }
        return setDecay(milliseconds: Int(decay.components.seconds * 1000))
    }

    /// Dirty pages (freed, still resident) are handed back over `milliseconds`; muzzy ones (handed
    /// back lazily, still counted as resident until the kernel takes them) at once.
    static func setDecay(milliseconds: Int) -> Bool {
        // ssize_t values. The defaults are for arenas created from now on; those in use are set
        // one by one (an index not yet in use answers EFAULT, and will take the default).
        guard write("arenas.dirty_decay_ms", milliseconds), write("arenas.muzzy_decay_ms", 0),
            let count = read("arenas.narenas", UInt32(0))
        else { return false }
        for arena in 0..<count {
            write("arena.\(arena).dirty_decay_ms", milliseconds)
            write("arena.\(arena).muzzy_decay_ms", 0)
        }
        return true
    }

    /// An arena's decay times in milliseconds (nil: no such arena in use).
    static func decay(ofArena arena: Int) -> (dirty: Int, muzzy: Int)? {
        guard let dirty = read("arena.\(arena).dirty_decay_ms", 0),
            let muzzy = read("arena.\(arena).muzzy_decay_ms", 0)
        else { return nil }
        return (dirty, muzzy)
    }

    /// Hands every arena's unused pages back to the kernel now. jemalloc decays an arena only
    /// as its threads allocate: in a quiet process the pages a burst freed stay until this.
    /// Returns whether jemalloc did it.
    @discardableResult
    public static func purge() -> Bool {
        mallctl("arena.\(MALLCTL_ARENAS_ALL).purge", nil, nil, nil, 0) == 0
    }

    /// A jemalloc control's value, of the C type `T` stands for (nil: no such control, or refused).
    private static func read<T>(_ name: String, _ initial: T) -> T? {
        var value = initial
        var size = MemoryLayout<T>.size
        return mallctl(name, &value, &size, nil, 0) == 0 ? value : nil
    }

    /// Sets a jemalloc control; returns whether jemalloc took it.
    @discardableResult
    private static func write<T>(_ name: String, _ value: T) -> Bool {
        var value = value
        return mallctl(name, nil, nil, &value, MemoryLayout<T>.size) == 0
    }
}

/// Purges the allocator (`Allocator.purge`) once the proxy has been quiet — no call recorded
/// over a whole `interval` — so a daemon idle after a burst gives the burst's memory back at
/// once. Under load jemalloc returns unused pages on its own, a few seconds after they fall out
/// of use; under glibc's allocator, trimming every second in a soak had left the sampled memory
/// no lower and stalled allocating threads 0.35 – 15 ms a trim.
struct AllocatorPurgeService: Service {
    var interval: Duration = .seconds(10)
    /// A count that moves while calls are recorded.
    let activity: @Sendable () -> Int
    var purge: @Sendable () -> Bool = { Allocator.purge() }
    let logger: Logger

    func run() async {
        await cancelWhenGracefulShutdown {
            var quiet = QuietSpell()
            while (try? await Task.sleep(for: interval)) != nil {
                guard quiet.began(activity: activity()) else { continue }
                let start = ContinuousClock.now
                let released = purge()
                logger.debug("allocator purged", metadata: [
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
