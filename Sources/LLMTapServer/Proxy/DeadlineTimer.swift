import NIOCore

/// A connection's timer for a deadline that moves at every step of every request and rarely
/// comes (a client's head and body timeouts, an upstream's read and idle timeouts). Scheduling
/// and cancelling a NIO timer at each step — ten a call between the two connections — was ~3 %
/// of llmtap's CPU at 32 connections (NIO's scheduled-task heap, a promise failed per cancel).
/// This one is moved only when the deadline comes sooner than it fires; when it fires, its
/// owner calls `fired()`, looks at what is due now, and sets it again if nothing is.
struct DeadlineTimer {
    private var scheduled: Scheduled<Void>?
    private var firesAt: NIODeadline?

    /// Makes the timer fire by `at`: left alone when it fires sooner, else scheduled anew by
    /// `schedule` (not called, and nothing allocated, when the timer stays).
    mutating func fire(by at: NIODeadline, _ schedule: (NIODeadline) -> Scheduled<Void>) {
        if let firesAt, firesAt <= at { return }
        scheduled?.cancel()
        firesAt = at
        scheduled = schedule(at)
    }

    /// The timer fired: none is pending.
    mutating func fired() {
        scheduled = nil
        firesAt = nil
    }

    mutating func stop() {
        scheduled?.cancel()
        fired()
    }
}
