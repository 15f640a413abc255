import CompressNIO
import Foundation
import LLMTapAdapters
import LLMTapCore
import NIOCore

/// The recording side of the tee for one call: it sees every upstream chunk
/// after it was forwarded, feeds the adapter's decoder, keeps the raw bytes,
/// and turns it all into a `CallRecord` when the call ends.
struct CallObservation: Sendable {
    var record: CallRecord
    let start: UInt64
    let route: Route
    let requestFacts: RequestFacts
    let pricing: PricingTable
    let isEventStream: Bool
    /// The response is content-encoded: decoded for parsing only at the end.
    let contentEncoding: String?

    private var responseBytes = ByteBuffer()
    private var firstByteTime: UInt64?
    private var sse = SSEStreamParser()
    private var stream = OpenAIChat.StreamAccumulator()

    init(
        record: CallRecord, start: UInt64, route: Route, requestFacts: RequestFacts, pricing: PricingTable,
        isEventStream: Bool, contentEncoding: String?
    ) {
        self.record = record
        self.start = start
        self.route = route
        self.requestFacts = requestFacts
        self.pricing = pricing
        self.isEventStream = isEventStream
        let coding = contentEncoding?.lowercased()
        self.contentEncoding = (coding == nil || coding == "identity") ? nil : coding
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// One upstream read, already forwarded to the client.
    mutating func received(_ chunk: ByteBuffer, at time: UInt64) {
        if firstByteTime == nil { firstByteTime = time }
        if isEventStream, contentEncoding == nil, route.apiFormat == .openAIChat { feedEvents(chunk, at: time) }
        responseBytes.writeImmutableBuffer(chunk)
    }

    private mutating func feedEvents(_ bytes: ByteBuffer, at time: UInt64) {
        // Events first, then consumed in place: a copy of the accumulator per read would
        // copy the text gathered so far each time.
        var events: [SSEEvent] = []
        sse.feed(bytes) { events.append($0) }
        for event in events { stream.consume(event, at: time) }
    }

    /// Builds the record of the finished (or failed, or cancelled) call.
    mutating func finish(outcome: CallRecord.Outcome, status: Int?, error: (type: String, message: String)? = nil)
        -> CallRecord
    {
        let end = Self.now()
        var r = record
        r.outcome = outcome
        r.httpStatus = status
        r.latencyS = Double(end &- start) / 1e9
        r.responseBody = Array(responseBytes.readableBytesView)
        r.responseContentEncoding = contentEncoding

        var facts = ResponseFacts()
        if route.apiFormat == .openAIChat {
            let decoded = decodedBody()
            if isEventStream {
                if contentEncoding != nil, let decoded { feedEvents(decoded, at: firstByteTime ?? end) }
                var events: [SSEEvent] = []
                sse.finish { events.append($0) }
                for event in events { stream.consume(event, at: end) }
                facts = stream.result
            } else if let decoded {
                facts = OpenAIChat.parseResponse(decoded)
            }
        } else if let decoded = decodedBody(), let json = JSONValue.parse(decoded.readableBytesView) {
            // Generic calls: an OpenAI-shaped usage or error is still worth keeping.
            facts = OpenAIChat.parseResponse(ByteBuffer(bytes: decoded.readableBytesView))
            if json["choices"] == nil { facts.output = nil }
        }
        r.output = facts.output
        r.outputs = facts.outputs
        r.toolCalls = facts.toolCalls
        r.finishReason = facts.finishReason
        r.responseModel = facts.responseModel
        r.usageRepeated = facts.usageRepeated
        r.errorType = error?.type ?? facts.errorType
        r.errorMessage = error?.message ?? facts.errorMessage
        if outcome == .ok, facts.errorType != nil || facts.errorMessage != nil, isEventStream {
            r.outcome = .upstreamError  // an error object in the middle of a 200 stream
        }
        r.usage = facts.usage ?? estimatedUsage(facts: facts, status: status)

        let timingPoints = isEventStream ? facts.contentTimes : (firstByteTime.map { [$0] } ?? [])
        let timings = StreamTimings(start: start, contentTimes: timingPoints, outputTokens: r.usage?.outputTokens)
        r.ttftS = timings.ttftS
        r.itlS = timings.itlS
        r.itlP95S = timings.itlP95S
        r.itlMaxS = timings.itlMaxS
        r.tokensPerSecond = timings.tokensPerSecond
        if !isEventStream, let tokens = r.usage?.outputTokens, tokens > 0, r.latencyS > 0 {
            r.tokensPerSecond = Double(tokens) / r.latencyS
        }

        if let cost = pricing.cost(provider: route.provider, model: r.responseModel ?? r.model, usage: r.usage) {
            r.costNanoUSD = cost.rawValue
            r.pricingVersion = pricing.version
        }
        r.usageChecks = UsageChecks.of(
            r, providerReportedUsage: facts.usage != nil,
            answered: route.apiFormat == .openAIChat && (200..<300).contains(status ?? 0))
        if r.noLog { r.stripContent() }
        return r
    }

    /// Usage counted from the text when the provider reported none (see `TokenEstimator`).
    /// Only for answers: an error status with no output has no usage to estimate.
    private func estimatedUsage(facts: ResponseFacts, status: Int?) -> Usage? {
        guard route.apiFormat == .openAIChat, requestFacts.isValidJSON else { return nil }
        let output = (facts.outputs ?? facts.output.map { [$0] } ?? []).joined()
            + (facts.toolCalls?.canonicalText ?? "")
        let answered = status.map { (200..<300).contains($0) } ?? false
        guard !output.isEmpty || (answered && responseBytes.readableBytes > 0) else { return nil }
        let input = Self.contextText(requestFacts.context)
        return Usage(
            inputTokens: TokenEstimator.estimate(input), outputTokens: TokenEstimator.estimate(output),
            source: .estimated)
    }

    static func contextText(_ context: JSONValue?) -> String {
        switch context {
        case .array(let messages)?:
            return messages.compactMap { $0["content"]?.plainText ?? $0.plainText }.joined(separator: "\n")
        case .string(let prompt)?:
            return prompt
        default:
            return ""
        }
    }

    /// The response body with its content coding undone, for parsing.
    private func decodedBody() -> ByteBuffer? {
        guard let coding = contentEncoding else { return responseBytes }
        var copy = responseBytes
        switch coding {
        case "gzip", "x-gzip": return try? copy.decompress(with: .gzip(), maxSize: 256 << 20)
        case "deflate": return (try? copy.decompress(with: .zlib(), maxSize: 256 << 20))
        default: return nil
        }
    }
}

extension CallRecord {
    /// `X-Tap-No-Log`: keep the facts (model, tokens, cost, timing, outcome), drop every word.
    mutating func stripContent() {
        context = nil
        chatInput = nil
        output = nil
        outputs = nil
        toolCalls = nil
        errorMessage = nil
        requestBody = []
        responseBody = []
    }
}
