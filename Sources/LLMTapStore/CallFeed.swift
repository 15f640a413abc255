import LLMTapCore
import Synchronization

/// Calls as they are committed, for live views (`/api/events`). Each subscriber
/// gets its own bounded buffer: a slow one misses the oldest calls rather than
/// holding the recorder back.
public final class CallFeed: Sendable {
    private let subscribers = Mutex<[Int: AsyncStream<CallRecord>.Continuation]>([:])
    private let nextID = Mutex(0)

    public init() {}

    /// A stream of calls committed from now on; it ends when the caller stops iterating.
    public func subscribe(buffer: Int = 1000) -> AsyncStream<CallRecord> {
        let (stream, continuation) = AsyncStream<CallRecord>.makeStream(bufferingPolicy: .bufferingNewest(buffer))
        let id = nextID.withLock { n in
            n += 1
            return n
        }
        subscribers.withLock { $0[id] = continuation }
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.removeValue(forKey: id) }
        }
        return stream
    }

    /// Ends every subscriber's stream (shutdown).
    public func finishAll() {
        let targets = subscribers.withLock { Array($0.values) }
        for continuation in targets { continuation.finish() }
    }

    /// - Parameter sessions: the sessions threading assigned, by call id.
    func publish(_ records: [CallRecord], sessions: [String: String]) {
        let targets = subscribers.withLock { Array($0.values) }
        guard !targets.isEmpty else { return }
        for var record in records {
            record.requestBody = []
            record.responseBody = []
            if let session = sessions[record.id] {
                record.sessionID = session
                record.sessionSource = .auto
            }
            for continuation in targets { continuation.yield(record) }
        }
    }
}
