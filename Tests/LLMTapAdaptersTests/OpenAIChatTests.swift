import LLMTapAdapters
import LLMTapCore
import LLMTapTestSupport
import NIOCore
import Testing

/// Feeds a stream in reads of `size` bytes (1 = byte by byte), one nanosecond apart.
func accumulate(_ wire: String, readSize size: Int) -> ResponseFacts {
    let bytes = Array(wire.utf8)
    var parser = SSEStreamParser()
    var accumulator = OpenAIChat.StreamAccumulator()
    var time: UInt64 = 1
    for start in stride(from: 0, to: bytes.count, by: size) {
        let read = ByteBuffer(bytes: bytes[start..<min(start + size, bytes.count)])
        parser.feed(read) { accumulator.consume($0, at: time) }
        time += 1
    }
    parser.finish { accumulator.consume($0, at: time) }
    return accumulator.result
}

struct OpenAIChatTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var wire: String
        var output: String?
        var finishReason: String?
        var input: Int64?
        var outputTokens: Int64?
        var completed: Bool
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "text with usage", wire: WireSamples.text.bytes(includeUsage: true), output: "Hello there!",
            finishReason: "stop", input: 12, outputTokens: 4, completed: true),
        Case(
            name: "text without usage", wire: WireSamples.text.bytes(includeUsage: false), output: "Hello there!",
            finishReason: "stop", input: nil, outputTokens: nil, completed: true),
        Case(
            name: "usage on every chunk", wire: WireSamples.usageEveryChunk.bytes(includeUsage: false),
            output: "w1 w2 w3 ", finishReason: "length", input: 9, outputTokens: 3, completed: true),
        Case(
            name: "CRLF line ends", wire: WireSamples.text.bytes(includeUsage: true).replacingOccurrences(of: "\n", with: "\r\n"),
            output: "Hello there!", finishReason: "stop", input: 12, outputTokens: 4, completed: true),
        Case(
            name: "keep-alive comments", wire: ": ping\n\n" + WireSamples.text.events(includeUsage: false).joined(separator: ": ping\n\n"),
            output: "Hello there!", finishReason: "stop", input: nil, outputTokens: nil, completed: true),
        Case(
            name: "cut before [DONE]", wire: WireSamples.text.events(includeUsage: false).prefix(3).joined(),
            output: "Hello there", finishReason: nil, input: nil, outputTokens: nil, completed: false),
    ]

    @Test(arguments: cases, [1, 7, 4096])
    func streamFacts(_ c: Case, readSize: Int) {
        let facts = accumulate(c.wire, readSize: readSize)
        #expect(facts.output == c.output)
        #expect(facts.finishReason == c.finishReason)
        #expect(facts.usage?.inputTokens == c.input)
        #expect(facts.usage?.outputTokens == c.outputTokens)
        #expect(facts.completed == c.completed)
        #expect(facts.errorType == nil)
    }

    @Test func usageOnEveryChunkIsNeverSummed() {
        let facts = accumulate(WireSamples.usageEveryChunk.bytes(includeUsage: false), readSize: 4096)
        #expect(facts.usage?.outputTokens == 3)
        #expect(facts.usage?.totalTokens == 12)
        #expect(facts.usageRepeated)
    }

    @Test func toolCallAssembledFromFragments() {
        let facts = accumulate(WireSamples.toolCall.bytes(includeUsage: true), readSize: 3)
        #expect(facts.finishReason == "tool_calls")
        #expect(facts.output == nil)
        let call = facts.toolCalls?.arrayValue?.first
        #expect(call?["id"]?.stringValue == "call_DdmO9pD3xa9XTPNJ32zg2hcA")
        #expect(call?["function"]?["name"]?.stringValue == "get_weather")
        #expect(call?["function"]?["arguments"]?.stringValue == #"{"location": "Paris"}"#)
        #expect(facts.usage?.inputTokens == 80)
        // every tool-call fragment counts as content for timing, the role-only chunk does not
        #expect(facts.contentTimes.count == 4)
    }

    @Test func roleOnlyChunkIsNotTheFirstToken() {
        let facts = accumulate(WireSamples.text.bytes(includeUsage: false), readSize: 1 << 20)
        #expect(facts.contentTimes.count == 3)
    }

    @Test func errorInTheMiddleOfAStream() {
        let facts = accumulate(WireSamples.errorMidStream.bytes(includeUsage: false), readSize: 5)
        #expect(facts.errorType == "server_error")
        #expect(facts.errorMessage?.hasPrefix("The server had an error") == true)
        #expect(facts.output == "Par")
        #expect(!facts.completed)
    }

    @Test func nonStreamingCompletion() {
        let facts = OpenAIChat.parseResponse(ByteBuffer(string: WireSamples.completion))
        #expect(facts.output == "Paris is the capital of France.")
        #expect(facts.responseModel == "gpt-4o-mini-2024-07-18")
        #expect(facts.usage == Usage(inputTokens: 2048, outputTokens: 8, totalTokens: 2056, cachedInputTokens: 1024, reasoningTokens: 0))
        #expect(facts.finishReason == "stop")
    }

    @Test func errorBody() {
        let facts = OpenAIChat.parseResponse(ByteBuffer(string: WireSamples.serverError))
        #expect(facts.errorType == "server_error")
        #expect(facts.output == nil)
    }

    @Test func requestFacts() {
        let facts = OpenAIChat.parseRequest(ByteBuffer(string: WireSamples.request(stream: true, extra: #","metadata":{"session_id":"s-9"}"#)))
        #expect(facts.model == "gpt-4o-mini")
        #expect(facts.isStream)
        #expect(!facts.includesUsage)
        #expect(facts.chatInput == "Capital of France?")
        #expect(facts.context?.arrayValue?.count == 2)
        #expect(facts.parameters?["temperature"] == .double(0.2))
        #expect(facts.parameters?["max_tokens"] == .int(64))
        #expect(facts.parameters?["messages"] == nil)
        #expect(facts.sessionID == "s-9")
    }

    @Test func malformedRequestGivesEmptyFacts() {
        let facts = OpenAIChat.parseRequest(ByteBuffer(string: #"{"model": "gpt-4o", "messages": ["#))
        #expect(!facts.isValidJSON)
        #expect(facts.model == nil)
    }

    @Test func usageInjectionKeepsTheRestOfTheBody() throws {
        let original = WireSamples.request(stream: true)
        let summary = RequestSummary(ByteBuffer(string: original))
        let injected = try #require(OpenAIChat.injectingUsage(into: ByteBuffer(string: original), summary: summary))
        let text = String(buffer: injected)
        #expect(text == #"{"stream_options":{"include_usage":true},"# + original.dropFirst())
        #expect(OpenAIChat.parseRequest(injected).includesUsage)
    }

    @Test func noInjectionWhenNotStreamingOrAlreadyAskedOrMalformed() {
        for body in [
            WireSamples.request(stream: false),
            WireSamples.request(stream: true, extra: #","stream_options":{"include_usage":true}"#),
            WireSamples.request(stream: true, extra: #","stream_options":{"include_usage":false}"#),
            WireSamples.request(stream: true, extra: #","stream_options":null"#),
            #"{"model":"gpt-4o","stream":true,"messages":["#,  // cut short
            #"{"model":"gpt-4o","stream":true} {}"#,  // two documents
        ] {
            let summary = RequestSummary(ByteBuffer(string: body))
            #expect(OpenAIChat.injectingUsage(into: ByteBuffer(string: body), summary: summary) == nil, "\(body)")
        }
    }

    /// The event loop's summary agrees with the full parse on what it reads, for every sample
    /// request — and reads no nested `model` or `stream`.
    @Test func summaryAgreesWithTheFullParse() throws {
        let bodies = [
            WireSamples.request(stream: true), WireSamples.request(stream: false),
            WireSamples.request(stream: true, extra: #","stream_options":{"include_usage":true}"#),
            #"{"messages":[{"role":"user","content":"{\"model\":\"x\",\"stream\":true}"}],"metadata":{"model":"m","stream":true}}"#,
            #" { "model" : "a" , "stream" : false , "model" : "b" , "stream" : true } "#,  // repeated keys: the last counts
            #"{"model":7,"stream":"yes","n":-1.5e3,"tools":[],"x":{},"y":null}"#,
            #"{"mod\u0065l":"escaped-key","str\u0065am":true}"#,
            #"{}"#,
        ]
        for body in bodies {
            let summary = RequestSummary(ByteBuffer(string: body))
            let facts = OpenAIChat.parseRequest(ByteBuffer(string: body))
            #expect(summary.isObject == facts.isValidJSON, "\(body)")
            #expect(summary.model == facts.model, "\(body)")
            #expect(summary.isStream == facts.isStream, "\(body)")
            #expect(summary.includesUsage == facts.includesUsage, "\(body)")
            #expect(summary.hasStreamOptions == (facts.parameters?["stream_options"] != nil), "\(body)")
        }
        let nested = RequestSummary(ByteBuffer(string: bodies[3]))
        #expect(nested.model == nil && !nested.isStream)
        let repeated = RequestSummary(ByteBuffer(string: bodies[4]))
        #expect(repeated.model == "b" && repeated.isStream)
        for malformed in [#"{"model":"a""#, #"{"model" "a"}"#, #"["model"]"#, #"{"model":"a",}"#, #"{"a":[1,2}"#, "", "null"] {
            #expect(!RequestSummary(ByteBuffer(string: malformed)).isObject, "\(malformed)")
            #expect(!OpenAIChat.parseRequest(ByteBuffer(string: malformed)).isValidJSON, "\(malformed)")
        }
    }
}
