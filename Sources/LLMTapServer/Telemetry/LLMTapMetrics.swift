import Foundation
import LLMTapCore
import LLMTapStore
import Prometheus
import Synchronization

/// The Prometheus metrics of `GET /metrics`: calls, latency, TTFT, tokens and cost by
/// provider and model, and the recorder's health. Labels are bounded: provider names
/// come from the configuration, and model names past the first `maximumModels` seen
/// are counted as `other` (a client choosing random model names cannot blow up the series).
final class LLMTapMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let recorder: Recorder
    private let models = Mutex<Set<String>>([])
    static let maximumModels = 200

    static let latencyBuckets: [Double] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
    static let ttftBuckets: [Double] = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30]
    static let itlBuckets: [Double] = [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5]
    static let overheadBuckets: [Double] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05]

    /// Upstream calls started and not yet recorded: the upstream connection pool's load.
    private let inFlight = Atomic<Int>(0)
    private let overhead: ValueHistogram
    /// Open client connections of the proxy, and those refused over the limit.
    let connections = ConnectionCounter()

    init(recorder: Recorder) {
        self.recorder = recorder
        overhead = registry.makeValueHistogram(name: "llmtap_overhead_seconds", buckets: Self.overheadBuckets)
    }

    /// llmtap's own time in a call: its work on the request before it goes upstream (parsing,
    /// routing, rewriting) plus the time from the first upstream read to its write to the
    /// client — what the proxy adds, beside the time the network and the upstream take.
    func observeOverhead(seconds: Double) { overhead.record(seconds) }

    /// An upstream call is about to start; it ends when its record is observed.
    func upstreamStarted() { inFlight.add(1, ordering: .relaxed) }

    /// The metric handles of one provider and model, made once: the registry's lookup by
    /// name and labels costs more than the update itself.
    final class Handles: Sendable {
        let latency: ValueHistogram
        let ttft: ValueHistogram
        let itl: ValueHistogram
        let inputTokens: Counter
        let outputTokens: Counter
        let cost: Counter
        let unpriced: Counter
        let calls = Mutex<[String: Counter]>([:])

        init(_ registry: PrometheusCollectorRegistry, _ labels: [(String, String)]) {
            latency = registry.makeValueHistogram(
                name: "llmtap_call_latency_seconds", labels: labels, buckets: LLMTapMetrics.latencyBuckets)
            ttft = registry.makeValueHistogram(
                name: "llmtap_time_to_first_token_seconds", labels: labels, buckets: LLMTapMetrics.ttftBuckets)
            itl = registry.makeValueHistogram(
                name: "llmtap_inter_token_latency_seconds", labels: labels, buckets: LLMTapMetrics.itlBuckets)
            inputTokens = registry.makeCounter(name: "llmtap_tokens_total", labels: labels + [("direction", "input")])
            outputTokens = registry.makeCounter(name: "llmtap_tokens_total", labels: labels + [("direction", "output")])
            cost = registry.makeCounter(name: "llmtap_cost_usd_total", labels: labels)
            unpriced = registry.makeCounter(name: "llmtap_unpriced_calls_total", labels: labels)
        }
    }

    private let handles = Mutex<[String: Handles]>([:])

    /// Counts a finished call (called as it is handed to the recorder).
    func observe(_ call: CallRecord) {
        inFlight.subtract(1, ordering: .relaxed)
        let model = boundedModel(call.responseModel ?? call.model)
        let labels = [("provider", call.provider), ("model", model)]
        let key = call.provider + "\u{0}" + model
        let h = handles.withLock { all in
            if let known = all[key] { return known }
            let made = Handles(registry, labels)
            all[key] = made
            return made
        }
        let status = call.httpStatus.map(String.init) ?? "none"
        let callsKey = call.outcome.rawValue + "/" + status
        h.calls.withLock { counters in
            if counters[callsKey] == nil {
                counters[callsKey] = registry.makeCounter(
                    name: "llmtap_calls_total", labels: labels + [("outcome", call.outcome.rawValue), ("status", status)])
            }
            return counters[callsKey]!
        }.increment()
        h.latency.record(call.latencyS)
        if let ttft = call.ttftS { h.ttft.record(ttft) }
        if let itl = call.itlS { h.itl.record(itl) }
        if let input = call.usage?.inputTokens { h.inputTokens.increment(by: input) }
        if let output = call.usage?.outputTokens { h.outputTokens.increment(by: output) }
        if let cost = call.costNanoUSD {
            h.cost.increment(by: Double(cost) / 1e9)
        } else {
            h.unpriced.increment()
        }
    }

    /// The exposition text, with the recorder's gauges read now.
    func exposition() -> String {
        let stats = recorder.stats
        registry.makeGauge(name: "llmtap_recorder_queue_depth").set(Double(stats.queued))
        registry.makeGauge(name: "llmtap_recorder_written_calls").set(Double(stats.written))
        registry.makeGauge(name: "llmtap_recorder_spooled_calls").set(Double(stats.spooled))
        registry.makeGauge(name: "llmtap_recorder_replayed_calls").set(Double(stats.replayed))
        registry.makeGauge(name: "llmtap_recorder_dropped_calls").set(Double(stats.dropped))
        registry.makeGauge(name: "llmtap_recorder_failed_writes").set(Double(stats.failedWrites))
        registry.makeGauge(name: "llmtap_recorder_batches").set(Double(stats.batches))
        registry.makeGauge(name: "llmtap_recorder_mean_batch_size").set(Double(stats.written) / Double(max(stats.batches, 1)))
        registry.makeGauge(name: "llmtap_recorder_longest_write_seconds").set(stats.longestWrite)
        registry.makeGauge(name: "llmtap_upstream_requests_in_flight").set(Double(max(inFlight.load(ordering: .relaxed), 0)))
        registry.makeGauge(name: "llmtap_database_healthy").set(stats.databaseHealthy ? 1.0 : 0.0)
        registry.makeGauge(name: "llmtap_database_reopened").set(Double(stats.reopened))
        registry.makeGauge(name: "llmtap_spool_pending_calls").set(Double(recorder.spool.count))
        registry.makeGauge(name: "llmtap_client_connections").set(Double(connections.current))
        registry.makeGauge(name: "llmtap_client_connections_refused").set(
            Double(connections.refused.load(ordering: .relaxed)))
        if let memory = Allocator.statistics() {
            registry.makeGauge(name: "llmtap_allocator_allocated_bytes").set(Double(memory.allocated))
            registry.makeGauge(name: "llmtap_allocator_resident_bytes").set(Double(memory.resident))
        }
        return registry.emitToString()
    }

    private func boundedModel(_ model: String?) -> String {
        guard let model, !model.isEmpty else { return "none" }
        return models.withLock { seen in
            if seen.contains(model) { return model }
            guard seen.count < Self.maximumModels else { return "other" }
            seen.insert(model)
            return model
        }
    }
}
