import LLMTapAdapters
import LLMTapCore
import NIOCore

/// What the fuzzer runs: every decoder and adapter llmtap applies to bytes it does not
/// control, each with a property beyond "does not crash" — above all that a byte stream
/// split anywhere across reads gives the same result as the stream in one read, which is
/// what the proxy relies on when it parses chunks as they arrive.
///
/// Each target takes arbitrary bytes; a broken property stops the process (`precondition`),
/// which libFuzzer reports as a crash with the input that caused it. `Fuzz/run.sh` builds
/// them with libFuzzer; the corpus in `Fuzz/corpus/<target>/` is replayed by `swift test`.
public enum FuzzTargets {
    public static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "sse": sse, "ndjson": ndjson, "response": response, "request": request, "usage-filter": usageFilter,
        "json": json,
    ]

    /// Where to split an input: taken from its first two bytes, the rest is the payload.
    static func split(_ input: [UInt8]) -> (payload: [UInt8], at: Int) {
        guard input.count >= 2 else { return (input, 0) }
        let payload = Array(input.dropFirst(2))
        let at = payload.isEmpty ? 0 : (Int(input[0]) << 8 | Int(input[1])) % (payload.count + 1)
        return (payload, at)
    }

    /// The payload in one read, and in three reads cut at `at` and halfway through the rest.
    static func reads(_ payload: [UInt8], at: Int) -> (whole: [ByteBuffer], pieces: [ByteBuffer]) {
        let middle = at + (payload.count - at) / 2
        let pieces = [payload[..<at], payload[at..<middle], payload[middle...]].map { ByteBuffer(bytes: $0) }
        return ([ByteBuffer(bytes: payload)], pieces)
    }

    static func sse(_ input: [UInt8]) {
        let (payload, at) = split(input)
        let (whole, pieces) = reads(payload, at: at)
        func events(_ reads: [ByteBuffer]) -> [SSEEvent] {
            var parser = SSEStreamParser()
            var events: [SSEEvent] = []
            for read in reads { parser.feed(read) { events.append($0) } }
            parser.finish { events.append($0) }
            return events
        }
        precondition(events(whole) == events(pieces), "SSE events depend on how the stream was split")
    }

    static func ndjson(_ input: [UInt8]) {
        let (payload, at) = split(input)
        let (whole, pieces) = reads(payload, at: at)
        func lines(_ reads: [ByteBuffer]) -> [[UInt8]] {
            var parser = NDJSONStreamParser()
            var lines: [[UInt8]] = []
            for read in reads { parser.feed(read) { lines.append(Array($0)) } }
            parser.finish { lines.append(Array($0)) }
            return lines
        }
        let found = lines(whole)
        precondition(found == lines(pieces), "NDJSON lines depend on how the stream was split")
        precondition(found.allSatisfy { !$0.contains(UInt8(ascii: "\n")) && !$0.isEmpty }, "a line holds a newline")
    }

    public static let contentTypes = ["application/json", "text/event-stream; charset=utf-8", "application/x-ndjson", ""]

    /// A response body for one API and content type (both chosen by the third byte).
    static func response(_ input: [UInt8]) {
        guard input.count >= 3 else { return }
        let apis = WireAPI.allCases
        let api = apis[Int(input[2]) % apis.count]
        let contentType = contentTypes[Int(input[2]) / apis.count % contentTypes.count]
        let (payload, at) = split(Array(input[..<2] + input[3...]))
        let (whole, pieces) = reads(payload, at: at)
        func facts(_ reads: [ByteBuffer]) -> ResponseFacts {
            var parser = ResponseParser(api: api, contentType: contentType)
            if parser.isIncremental { for read in reads { parser.feed(read, at: 1) } }
            return parser.finish(body: ByteBuffer(bytes: payload), at: 2)
        }
        let result = facts(whole)
        let split = facts(pieces)
        precondition(result == split, "\(api) facts depend on how the body was split at \(at):\n\(result)\n\(split)")
        if let usage = result.usage {
            precondition(usage.inputTokens.map { $0 >= 0 } ?? true, "negative input tokens")
            precondition(usage.outputTokens.map { $0 >= 0 } ?? true, "negative output tokens")
        }
    }

    /// A request body through every API's request parser, the alias rewrite and the usage injection.
    static func request(_ input: [UInt8]) {
        let body = ByteBuffer(bytes: input)
        for api in WireAPI.allCases { _ = api.parseRequest(body) }
        // The event loop's summary says what the full parse says of a JSON body; the injection
        // keeps a JSON body JSON (a body that is not JSON fails upstream either way).
        let summary = RequestSummary(body)
        let parsed = OpenAIChat.parseRequest(body)
        if parsed.isValidJSON {
            precondition(
                summary.isObject && summary.model == parsed.model && summary.isStream == parsed.isStream
                    && summary.includesUsage == parsed.includesUsage
                    && summary.hasStreamOptions == (parsed.parameters?["stream_options"] != nil),
                "the request summary disagrees with the parse: \(summary) \(parsed)")
            if let injected = OpenAIChat.injectingUsage(into: body, summary: summary) {
                let json = JSONValue.parse(injected.readableBytesView)
                precondition(json?["stream_options"]?["include_usage"] == .bool(true), "usage injection broke the body")
            }
        }
        // The proxy rewrites only a body that parsed as JSON with a model (an alias of it).
        if let original = JSONValue.parse(input), original["model"]?.stringValue != nil,
            let rewritten = ModelAlias.rewrite(body, to: "target-model")
        {
            var expected = original.objectValue ?? [:]
            expected["model"] = .string("target-model")
            let json = JSONValue.parse(rewritten.readableBytesView)
            precondition(json == .object(expected), "alias rewrite changed more than the model, or broke the body")
        }
        _ = try? LLMStudioEngine.parseCall(body)
    }

    /// The filter that hides injected usage from a client: the same output however the stream is split.
    static func usageFilter(_ input: [UInt8]) {
        let (payload, at) = split(input)
        let (whole, pieces) = reads(payload, at: at)
        func filtered(_ reads: [ByteBuffer]) -> [UInt8] {
            var filter = OpenAIChat.UsageChunkFilter()
            var out: [UInt8] = []
            for read in reads { out += Array(filter.process(read).readableBytesView) }
            return out + Array(filter.finish().readableBytesView)
        }
        precondition(filtered(whole) == filtered(pieces), "the usage filter depends on how the stream was split")
    }

    /// JSON: whatever parses re-parses from its canonical text to the same value.
    static func json(_ input: [UInt8]) {
        guard let value = JSONValue.parse(input) else { return }
        let again = JSONValue.parse(Array(value.canonicalText.utf8))
        precondition(again == value, "canonical JSON text does not parse back to the same value")
    }
}
