import Foundation
import LLMTapStore
import Logging
import ServiceLifecycle

/// `--retain 90d`: deletes calls older than the period, once at start and then every
/// minute, in small batches (see `Store.prune`).
struct RetentionService: Service {
    let store: Store
    let period: Double
    let logger: Logger

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let deleted = try await store.prune(before: Date().timeIntervalSince1970 - period)
                    if deleted > 0 { logger.info("retention pruned calls", metadata: ["llmtap.calls": "\(deleted)"]) }
                } catch {
                    logger.warning("retention failed", metadata: ["llmtap.error": "\(error)"])
                }
                try await Task.sleep(for: .seconds(60))
            }
        }
    }
}
