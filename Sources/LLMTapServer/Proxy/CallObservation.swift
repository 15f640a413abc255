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
    /// What the request body says; a summary until `finish` parses the body.
    private(set) var requestFacts: RequestFacts
    let pricing: PricingTable
    /// The response is a stream of events or lines (SSE, NDJSON), not one document.
    let isStream: Bool
    /// The response is content-encoded: decoded for parsing only at the end.
    let contentEncoding: String?
    let contentType: String

    private var responseBytes = ByteBuffer()
    private var firstByteTime: UInt64?
    private var parser: ResponseParser
    /// Parse at `finish`, not as the bytes arrive: the event loop that forwards them only
    /// keeps them and the end offset and arrival time of each read (`reads`), and the
    /// recorder's thread feeds the parser the same reads with the same times (the proxy's hot
    /// path, whose `finish` runs there: `Recorder.submit(building:)`).
    let deferParsing: Bool
    /// Where each read ended in `responseBytes`' readable bytes, and when it came.
    private var reads: [(end: Int, time: UInt64)] = []

    init(
        record: CallRecord, start: UInt64, route: Route, requestFacts: RequestFacts, pricing: PricingTable,
        contentType: String, contentEncoding: String?, deferParsing: Bool = false
    ) {
        self.record = record
        self.start = start
        self.route = route
        self.requestFacts = requestFacts
        self.pricing = pricing
        let coding = contentEncoding?.lowercased()
        self.contentEncoding = (coding == nil || coding == "identity") ? nil : coding
        self.contentType = contentType
        parser = ResponseParser(api: route.api, contentType: contentType)
        isStream = parser.isStream
        self.deferParsing = deferParsing
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// One upstream read, already forwarded to the client.
    mutating func received(_ chunk: ByteBuffer, at time: UInt64) {
        if firstByteTime == nil { firstByteTime = time }
        responseBytes.writeImmutableBuffer(chunk)
        guard contentEncoding == nil, parser.isIncremental else { return }
        if deferParsing { reads.append((responseBytes.readableBytes, time)) } else { parser.feed(chunk, at: time) }
    }

    /// The response's bytes so far.
    var responseByteCount: Int { responseBytes.readableBytes }

    /// The first output's text received so far (a stream's, as it grows).
    var textSoFar: String { parser.text }

    /// The facts of the whole response, however it came.
    private mutating func responseFacts(end: UInt64) -> ResponseFacts {
        if !reads.isEmpty {
            parser.feed(responseBytes, readEnds: reads)
            reads = []
        }
        let decoded = decodedBody()
        if contentEncoding != nil, parser.isIncremental, let decoded { parser.feed(decoded, at: firstByteTime ?? end) }
        return parser.finish(body: decoded, at: end)
    }

    /// Builds the record of the finished (or failed, or cancelled) call.
    /// - Parameter end: when the call ended (now, unless it is finished later on another thread).
    mutating func finish(
        outcome: CallRecord.Outcome, status: Int?, error: (type: String, message: String)? = nil, end: UInt64 = now()
    ) -> CallRecord {
        let facts = responseFacts(end: end)
        var r = record
        if requestFacts.isSummary {
            // The hot path sent the call upstream knowing only the body's summary (`ProxyResponder.outgoing`).
            var request = route.api.parseRequest(ByteBuffer(bytes: r.requestBody))
            if r.requestedModel != nil { request.model = r.model }  // an alias: the record names its target
            ProxyResponder.describeBody(&r, facts: request)
            requestFacts = request
        }
        r.outcome = outcome
        if outcome == .clientCancelled, facts.completed {
            // The client had the whole answer — the API's own end (`[DONE]`, `message_stop`,
            // `"done":true`, a complete document) was forwarded — and closed its connection before
            // the transport's end (the last chunk); SDKs stop reading at the API's end.
            r.outcome = .ok
        }
        r.httpStatus = status
        r.latencyS = Double(end &- start) / 1e9
        r.responseBody = Array(responseBytes.readableBytesView)
        r.responseContentEncoding = contentEncoding
        r.output = facts.output
        r.outputs = facts.outputs
        r.toolCalls = facts.toolCalls
        r.finishReason = facts.finishReason
        r.responseModel = facts.responseModel
        r.usageRepeated = facts.usageRepeated
        if let server = facts.serverMetrics { r.serverMetrics = server }
        r.errorType = error?.type ?? facts.errorType
        r.errorMessage = error?.message ?? facts.errorMessage
        if outcome == .ok, facts.errorType != nil || facts.errorMessage != nil, isStream {
            r.outcome = .upstreamError  // an error object in the middle of a 200 stream
        }
        if r.output == "", r.outcome != .ok || (status ?? 0) >= 400 { r.output = nil }
        if route.api != .generic, Self.readNothing(facts), responseBytes.readableBytes > 0 {
            // The upstream did not speak the API its path implies (an HTML page, another format):
            // its bytes went to the client unchanged; the record says so and keeps them.
            r.apiFormat = WireAPI.generic.rawValue
            r.output = nil
            if r.errorType == nil {
                r.errorType = "unparsed_response"
                r.errorMessage = "the response is not \(route.api.rawValue) (content-type \(contentType.isEmpty ? "none" : contentType))"
            }
        }
        r.usage = facts.usage ?? estimatedUsage(facts: facts, status: status, parsed: r.apiFormat != WireAPI.generic.rawValue)

        let timingPoints = isStream ? facts.contentTimes : (firstByteTime.map { [$0] } ?? [])
        let timings = StreamTimings(start: start, contentTimes: timingPoints, outputTokens: r.usage?.outputTokens)
        r.ttftS = timings.ttftS
        r.itlS = timings.itlS
        r.itlP95S = timings.itlP95S
        r.itlMaxS = timings.itlMaxS
        r.tokensPerSecond = timings.tokensPerSecond
        if !isStream, let tokens = r.usage?.outputTokens, tokens > 0, r.latencyS > 0 {
            r.tokensPerSecond = Double(tokens) / r.latencyS
        }

        if let cost = pricing.cost(provider: route.provider, model: r.responseModel ?? r.model, usage: r.usage) {
            r.costNanoUSD = cost.rawValue
            r.pricingVersion = pricing.version
        }
        r.usageChecks = UsageChecks.of(
            r, providerReportedUsage: facts.usage != nil,
            answered: r.apiFormat != WireAPI.generic.rawValue && (200..<300).contains(status ?? 0))
        if r.noLog { r.stripContent() }
        return r
    }

    /// Nothing of the API was found in the response.
    static func readNothing(_ facts: ResponseFacts) -> Bool {
        (facts.output ?? "").isEmpty && facts.usage == nil && facts.responseModel == nil && facts.toolCalls == nil
            && facts.errorType == nil && facts.errorMessage == nil && !facts.completed
    }

    /// Usage counted from the text when the provider reported none (see `TokenEstimator`).
    /// Only for answers: an error status with no output has no usage to estimate.
    private func estimatedUsage(facts: ResponseFacts, status: Int?, parsed: Bool) -> Usage? {
        guard parsed, requestFacts.isValidJSON else { return nil }
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
        return Self.decode(responseBytes, coding: coding)
    }

    /// Bytes in a content coding llmtap accepts (`gzip`, `deflate`; see `HeaderPolicy`), decoded;
    /// nil for another coding or bytes that do not decode.
    static func decode(_ bytes: ByteBuffer, coding: String) -> ByteBuffer? {
        var copy = bytes
        switch coding {
        case "gzip", "x-gzip": return try? copy.decompress(with: .gzip(), maxSize: 256 << 20)
        case "deflate": return try? copy.decompress(with: .zlib(), maxSize: 256 << 20)
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
