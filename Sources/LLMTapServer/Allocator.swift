import CJemalloc
import Logging
import ServiceLifecycle

/// llmtap runs on jemalloc (linked: its `malloc` comes before glibc's for the whole process).
///
/// Why not glibc's allocator: under load it kept what was freed spread over its heaps. In a
/// 600 k-call soak at 32 connections (`Benchmarks/soak.sh`), the bytes in use (`mallinfo2`,
/// sampled every 100 ms) stayed at 9 – 14 MiB while glibc's heaps grew from 12 to 27 MiB and
/// the process's anonymous memory by 28 – 34 % after warm-up, whatever the arenas (one: +19 %,
/// and 6 % fewer calls a second) or fast bins (off: +21 %). jemalloc gives unused pages back
/// on its own after ~10 s: the same soak ended +5 % over warm-up, and the proxy took
/// ~10 % less CPU a call (non-stream calls at 32 connections: 154 – 165 against 169 – 192 µs).
public enum Allocator {
    /// jemalloc's version, read from jemalloc itself.
    public static var version: String? {
        var text: UnsafePointer<CChar>?
        var size = MemoryLayout<UnsafePointer<CChar>?>.size
        guard mallctl("version", &text, &size, nil, 0) == 0, let text else { return nil }
        return String(cString: text)
    }

    /// Bytes jemalloc has handed this thread so far (nil: jemalloc keeps no statistics). It
    /// moves only when allocations go through jemalloc.
    static var allocatedByThisThread: UInt64? {
        var bytes: UInt64 = 0
        var size = MemoryLayout<UInt64>.size
        return mallctl("thread.allocated", &bytes, &size, nil, 0) == 0 ? bytes : nil
    }

    /// Hands every arena's unused pages back to the kernel now, not after the ~10 s jemalloc
    /// waits on its own. Returns whether jemalloc did it.
    @discardableResult
    public static func purge() -> Bool {
        mallctl("arena.\(MALLCTL_ARENAS_ALL).purge", nil, nil, nil, 0) == 0
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
