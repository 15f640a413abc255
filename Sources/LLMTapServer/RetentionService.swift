import Foundation
import LLMTapStore
import Logging
import ServiceLifecycle

/// `--retain 90d` deletes calls older than the period; `--retain-payloads 14d` drops the
/// request and response bodies of older calls and keeps their facts. Once at start, then
/// every minute, in small batches (see `Store.prune`, `Store.dropPayloads`).
struct RetentionService: Service {
    let store: Store
    /// Seconds calls are kept, if limited.
    let calls: Double?
    /// Seconds payloads are kept, if limited.
    let payloads: Double?
    let logger: Logger

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let now = Date().timeIntervalSince1970
                    if let calls {
                        let deleted = try await store.prune(before: now - calls)
                        if deleted > 0 { logger.info("retention pruned calls", metadata: ["llmtap.calls": "\(deleted)"]) }
                    }
                    if let payloads {
                        let dropped = try await store.dropPayloads(before: now - payloads)
                        if dropped > 0 { logger.info("retention dropped payloads", metadata: ["llmtap.calls": "\(dropped)"]) }
                    }
                } catch {
                    logger.warning("retention failed", metadata: ["llmtap.error": "\(error)"])
                }
                try await Task.sleep(for: .seconds(60))
            }
        }
    }
}
