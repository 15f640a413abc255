import Foundation
import LLMTapCore
import OTel
import ServiceLifecycle
import Tracing

/// Optional OTLP export (`--otlp-endpoint`): one span per call, named and attributed after
/// the OpenTelemetry GenAI semantic conventions (`gen_ai.operation.name`,
/// `gen_ai.request.model`, `gen_ai.usage.input_tokens`, …), timed from when llmtap
/// received the request to its last byte. Spans carry facts only — never prompts or
/// outputs, which stay in llmtap's database. The tracer is llmtap's own (swift-otel's
/// backend, not the process-global instrumentation system).
struct CallSpans: Sendable {
    let tracer: any Tracer

    /// The tracer and the service that batches and exports its spans.
    static func make(endpoint: String, protocol: OTLPProtocol, flushInterval: Duration) throws -> (CallSpans, any Service) {
        var configuration = OTel.Configuration.default
        configuration.serviceName = "llmtap"
        configuration.diagnosticLogLevel = .error
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.traces.exporter = .otlp
        configuration.traces.sampler = .alwaysOn
        configuration.traces.batchSpanProcessor.scheduleDelay = flushInterval
        var base = endpoint
        while base.hasSuffix("/") { base.removeLast() }
        configuration.traces.otlpExporter.endpoint = base.hasSuffix("/v1/traces") ? base : base + "/v1/traces"
        configuration.traces.otlpExporter.protocol = `protocol` == .httpJSON ? .httpJSON : .httpProtobuf
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        return (CallSpans(tracer: backend.factory), backend.service)
    }

    enum OTLPProtocol: String, Sendable {
        case httpProtobuf = "http/protobuf"
        case httpJSON = "http/json"
    }

    /// A span for a finished call, with its own start and end times.
    func record(_ call: CallRecord) {
        let operation = Self.operation(call.apiFormat)
        let model = call.responseModel ?? call.model
        let start = Instant(seconds: call.createdAt)
        let span = tracer.startSpan(
            model.map { "\(operation) \($0)" } ?? operation, context: .topLevel, ofKind: .client, at: start)
        var attributes = SpanAttributes()
        attributes["gen_ai.operation.name"] = operation
        attributes["gen_ai.provider.name"] = call.provider
        attributes["gen_ai.system"] = call.provider
        if let model = call.model { attributes["gen_ai.request.model"] = model }
        if let model = call.responseModel { attributes["gen_ai.response.model"] = model }
        if let reason = call.finishReason { attributes["gen_ai.response.finish_reasons"] = [reason] }
        if let session = call.sessionID { attributes["gen_ai.conversation.id"] = session }
        if let input = call.usage?.inputTokens { attributes["gen_ai.usage.input_tokens"] = Int(input) }
        if let output = call.usage?.outputTokens { attributes["gen_ai.usage.output_tokens"] = Int(output) }
        for (parameter, name) in [("temperature", "temperature"), ("top_p", "top_p"), ("max_tokens", "max_tokens")] {
            switch call.parameters?[parameter] {
            case .double(let value)?: attributes["gen_ai.request.\(name)"] = value
            case .int(let value)?: attributes["gen_ai.request.\(name)"] = Int(value)
            default: break
            }
        }
        if let status = call.httpStatus { attributes["http.response.status_code"] = status }
        attributes["llmtap.call_id"] = call.id
        attributes["llmtap.api_format"] = call.apiFormat
        attributes["llmtap.outcome"] = call.outcome.rawValue
        attributes["llmtap.stream"] = call.isStream
        if let cost = call.costNanoUSD { attributes["llmtap.cost_usd"] = Double(cost) / 1e9 }
        if let ttft = call.ttftS { attributes["llmtap.time_to_first_token_s"] = ttft }
        if call.outcome != .ok {
            attributes["error.type"] = call.errorType ?? call.outcome.rawValue
            span.setStatus(SpanStatus(code: .error, message: call.errorMessage))
        }
        span.attributes = attributes
        span.end(at: Instant(seconds: call.createdAt + call.latencyS))
    }

    /// `gen_ai.operation.name` of a wire API.
    static func operation(_ apiFormat: String) -> String {
        switch apiFormat {
        case "openai.completions", "ollama.generate": "text_completion"
        case "openai.embeddings": "embeddings"
        case "generic": "request"
        default: "chat"
        }
    }

    /// A point in time given in Unix seconds, as tracing takes it.
    struct Instant: TracerInstant {
        let nanosecondsSinceEpoch: UInt64

        init(seconds: Double) { nanosecondsSinceEpoch = UInt64(max(0, seconds * 1e9)) }

        static func < (a: Instant, b: Instant) -> Bool { a.nanosecondsSinceEpoch < b.nanosecondsSinceEpoch }
    }
}
