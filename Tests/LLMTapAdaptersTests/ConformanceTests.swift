import LLMTapAdapters
import LLMTapCore
import LLMTapTestSupport
import NIOCore
import Testing

/// Every adapter over its recorded fixtures (non-stream, stream, tool use, error,
/// cut-off stream), read the way the proxy reads them: the request body whole, the
/// response in small reads, then the whole body. Checks what a record is built from.
struct ConformanceTests {
    static let pricing = try! PricingTable.bundled()

    @Test(arguments: WireFixtures.all)
    func adapterReadsFixture(_ fixture: WireFixture) throws {
        let api = try #require(WireAPI(rawValue: fixture.api))
        let expected = fixture.expected
        let request = api.parseRequest(ByteBuffer(string: fixture.request))
        #expect(request.isValidJSON)
        #expect(request.model == expected.model)
        #expect(request.context?.arrayValue?.count == expected.contextCount)
        #expect(request.chatInput == expected.chatInput)
        #expect(request.parameters?["model"] == nil, "the model is not a parameter")

        var parser = ResponseParser(api: api, contentType: fixture.contentType)
        let bytes = Array(fixture.response.utf8)
        var time: UInt64 = 1_000
        for start in stride(from: 0, to: bytes.count, by: 7) {
            parser.feed(ByteBuffer(bytes: bytes[start..<min(start + 7, bytes.count)]), at: time)
            time += 1_000
        }
        let facts = parser.finish(body: ByteBuffer(bytes: bytes), at: time)

        #expect(facts.responseModel == expected.responseModel)
        #expect(facts.output == expected.output)
        let toolNames = (facts.toolCalls?.arrayValue ?? []).compactMap { $0["function"]?["name"]?.stringValue }
        #expect(toolNames == expected.toolCalls)
        if !expected.toolCalls.isEmpty {
            // Arguments assembled whole, whatever the API's fragments were.
            let arguments = facts.toolCalls?.arrayValue?.first?["function"]?["arguments"]?.stringValue ?? ""
            let parsed = JSONValue.parse(Array(arguments.utf8))
            #expect(parsed?.objectValue?.values.contains(.string("Paris")) == true, "\(arguments)")
        }
        #expect(facts.finishReason == expected.finishReason)
        #expect(facts.usage?.inputTokens == expected.inputTokens)
        #expect(facts.usage?.outputTokens == expected.outputTokens)
        #expect(facts.completed == expected.completed)
        #expect(facts.errorType == expected.errorType)
        #expect(parser.isStream == (fixture.contentType.hasPrefix("text/event-stream") || fixture.contentType.hasPrefix("application/x-ndjson")))
        if parser.isStream { #expect(!facts.contentTimes.isEmpty == expected.timed) }

        let model = facts.responseModel ?? request.model
        let cost = Self.pricing.cost(provider: fixture.provider, model: model, usage: facts.usage)
        #expect(cost?.rawValue == expected.costNanoUSD)
    }

    /// The recorder hands a stream's body over whole with where each read ended and when
    /// (`feed(_:readEnds:)`): the same facts — text, usage, finish, tool calls, and each
    /// content event's time — as feeding the reads one by one, however the body was cut:
    /// every byte apart, in sevens, at random, the whole body as one read; line ends as sent
    /// and as `\r\n`.
    @Test(arguments: WireFixtures.all)
    func aBodyFedWholeWithItsReadsGivesTheFactsOfItsReadsOneByOne(_ fixture: WireFixture) throws {
        let api = try #require(WireAPI(rawValue: fixture.api))
        var random = SystemRandomNumberGenerator()
        for text in [fixture.response, fixture.response.replacingOccurrences(of: "\n", with: "\r\n")] {
            let bytes = Array(text.utf8)
            var cuts: [[Int]] = [Array(1...bytes.count), Array(stride(from: 7, to: bytes.count, by: 7)) + [bytes.count], [bytes.count]]
            for _ in 0..<20 {
                cuts.append((Set((0..<Int.random(in: 1...12, using: &random)).map { _ in Int.random(in: 1..<bytes.count, using: &random) }) + [bytes.count]).sorted())
            }
            for ends in cuts {
                let reads = ends.enumerated().map { (end: $1, time: UInt64(1_000 * ($0 + 1))) }
                var oneByOne = ResponseParser(api: api, contentType: fixture.contentType)
                var start = 0
                for read in reads {
                    oneByOne.feed(ByteBuffer(bytes: bytes[start..<read.end]), at: read.time)
                    start = read.end
                }
                var whole = ResponseParser(api: api, contentType: fixture.contentType)
                var body = ByteBuffer(string: "ignored before the reader index")
                body.moveReaderIndex(to: body.writerIndex)
                body.writeBytes(bytes)
                whole.feed(body, readEnds: reads)
                #expect(whole.text == oneByOne.text)
                let end = UInt64(1_000 * (reads.count + 1))
                let expected = oneByOne.finish(body: ByteBuffer(bytes: bytes), at: end)
                #expect(whole.finish(body: ByteBuffer(bytes: bytes), at: end) == expected, "\(fixture.name), reads ending at \(ends)")
                if oneByOne.isStream, fixture.expected.timed, ends.count > 1 { #expect(!expected.contentTimes.isEmpty) }
                // The first read fed alone (it may end inside an event), the rest whole after it.
                if let first = reads.first, reads.count > 1 {
                    var split = ResponseParser(api: api, contentType: fixture.contentType)
                    split.feed(ByteBuffer(bytes: bytes[..<first.end]), at: first.time)
                    split.feed(
                        ByteBuffer(bytes: bytes[first.end...]),
                        readEnds: reads.dropFirst().map { (end: $0.end - first.end, time: $0.time) })
                    #expect(split.finish(body: ByteBuffer(bytes: bytes), at: end) == expected, "\(fixture.name), split at \(first.end)")
                }
            }
        }
    }

    @Test func streamTextGrowsAsReadsArrive() {
        var parser = ResponseParser(api: .openAIResponses, contentType: "text/event-stream")
        var seen: [String] = []
        for event in WireSamples.responsesStream.components(separatedBy: "\n\n") where !event.isEmpty {
            parser.feed(ByteBuffer(string: event + "\n\n"), at: 1)
            if seen.last != parser.text { seen.append(parser.text) }
        }
        #expect(seen == ["", "Paris", "Paris is the capital."])
    }

    @Test func pathsPickTheirAPI() {
        #expect(WireAPI.of(endpoint: "/v1/chat/completions") == .openAIChat)
        #expect(WireAPI.of(endpoint: "/openai/deployments/x/chat/completions") == .openAIChat)
        #expect(WireAPI.of(endpoint: "/v1/completions") == .openAICompletions)
        #expect(WireAPI.of(endpoint: "/v1/embeddings") == .openAIEmbeddings)
        #expect(WireAPI.of(endpoint: "/v1/responses") == .openAIResponses)
        #expect(WireAPI.of(endpoint: "/v1/messages") == .anthropicMessages)
        #expect(WireAPI.of(endpoint: "/api/chat") == .ollamaChat)
        #expect(WireAPI.of(endpoint: "/api/generate") == .ollamaGenerate)
        #expect(WireAPI.of(endpoint: "/v1/models") == .generic)
        #expect(WireAPI.of(endpoint: "/v1/responses/resp_1") == .generic)
    }

    @Test func malformedBodiesGiveEmptyFactsForEveryAPI() {
        for api in WireAPI.allCases {
            let facts = api.parseRequest(ByteBuffer(string: #"{"model": "gpt-4o", "messages": [tru"#))
            #expect(!facts.isValidJSON)
            #expect(facts.model == nil)
            var parser = ResponseParser(api: api, contentType: "text/event-stream")
            parser.feed(ByteBuffer(string: "data: {not json\n\n"), at: 1)
            let response = parser.finish(body: ByteBuffer(string: "data: {not json\n\n"), at: 2)
            #expect(response.usage == nil && !response.completed)
        }
    }
}

struct ModelAliasTests {
    @Test func rewritesOnlyTheTopLevelModel() throws {
        let body = #"{"messages":[{"role":"user","content":"x","model":"auto"}], "model" : "auto","n":1}"#
        let out = try #require(ModelAlias.rewrite(ByteBuffer(string: body), to: "gpt-4o-mini"))
        #expect(String(buffer: out) == #"{"messages":[{"role":"user","content":"x","model":"auto"}], "model" : "gpt-4o-mini","n":1}"#)
        #expect(ModelAlias.rewrite(ByteBuffer(string: #"{"model":7}"#), to: "x") == nil)
        #expect(ModelAlias.rewrite(ByteBuffer(string: #"{"messages":[]}"#), to: "x") == nil)
        let escaped = try #require(ModelAlias.rewrite(ByteBuffer(string: #"{"model":"a\"b"}"#), to: #"q"uote"#))
        #expect(JSONValue.parse(escaped.readableBytesView)?["model"]?.stringValue == #"q"uote"#)
    }

    /// Found by the fuzzer: with the key repeated, only the first was rewritten, and JSON readers
    /// (ours, Python's) take the last.
    @Test func rewritesEveryRepeatOfTheModel() throws {
        let out = try #require(ModelAlias.rewrite(ByteBuffer(string: #"{"model":"auto","model":"auto","m":true}"#), to: "x"))
        #expect(String(buffer: out) == #"{"model":"x","model":"x","m":true}"#)
        #expect(ModelAlias.rewrite(ByteBuffer(string: #"{"model":"auto","n":"unterminated}"#), to: "x") == nil)
    }
}

struct LLMStudioEngineTests {
    @Test func stringInputBecomesOneUserMessage() throws {
        let call = try LLMStudioEngine.parseCall(
            ByteBuffer(string: #"{"api_key":"sk-x","model":"gpt-4o-mini","chat_input":"Hello! Who are you?","parameters":{"temperature":1,"max_tokens":2048},"is_stream":"true","session_id":"s1"}"#))
        #expect(call.messages.count == 1 && call.chatInput == "Hello! Who are you?")
        #expect(call.isStream && call.sessionID == "s1" && call.apiKey == "sk-x")
        let openAI = LLMStudioEngine.upstreamRequest(call, model: "gpt-4o-mini", family: .openAI, baseURL: "http://h")
        #expect(openAI.path == "/v1/chat/completions" && openAI.api == .openAIChat)
        let body = try #require(JSONValue.parse(openAI.body.readableBytesView))
        #expect(body["temperature"]?.intValue == 1 && body["max_tokens"]?.intValue == 2048)
        #expect(body["stream_options"]?["include_usage"]?.boolValue == true)
        #expect(body["api_key"] == nil && body["session_id"] == nil, "nothing of the engine call leaks upstream")
    }

    @Test func anthropicTakesSystemApartAndNeedsMaxTokens() throws {
        let call = try LLMStudioEngine.parseCall(
            ByteBuffer(string: #"{"model":"claude-3-5-haiku-20241022","chat_input":[{"role":"system","content":"Be terse."},{"role":"user","content":"Hi"}],"parameters":{"temperature":0.2,"frequency_penalty":0,"stop":"END"}}"#))
        let request = LLMStudioEngine.upstreamRequest(call, model: call.model, family: .anthropic, baseURL: "http://h")
        let body = try #require(JSONValue.parse(request.body.readableBytesView))
        #expect(request.path == "/v1/messages")
        #expect(body["system"]?.stringValue == "Be terse.")
        #expect(body["messages"]?.arrayValue?.count == 1)
        #expect(body["max_tokens"]?.intValue == 4096)
        #expect(body["frequency_penalty"] == nil, "Messages refuses fields it does not know")
        #expect(body["stop_sequences"]?.arrayValue?.first?.stringValue == "END")
    }

    @Test func ollamaTakesSamplingUnderOptions() throws {
        let call = try LLMStudioEngine.parseCall(
            ByteBuffer(string: #"{"model":"llama3.2","chat_input":"Hi","parameters":{"temperature":0.1,"max_tokens":50,"format":"json"}}"#))
        let request = LLMStudioEngine.upstreamRequest(call, model: call.model, family: .ollama, baseURL: "http://h")
        let body = try #require(JSONValue.parse(request.body.readableBytesView))
        #expect(request.path == "/api/chat" && body["stream"]?.boolValue == false)
        #expect(body["options"]?["temperature"] == .double(0.1) && body["options"]?["num_predict"]?.intValue == 50)
        #expect(body["format"]?.stringValue == "json")
    }

    @Test func invalidCallsAreRefusedWithAReason() {
        for body in [#"not json"#, #"{"chat_input":"x"}"#, #"{"model":"m"}"#, #"{"model":"m","chat_input":7}"#,
            #"{"model":"m","chat_input":"x","parameters":[1]}"#]
        {
            #expect(throws: LLMStudioEngine.InvalidCall.self) { try LLMStudioEngine.parseCall(ByteBuffer(string: body)) }
        }
    }

    @Test func familiesFollowNameAndURL() {
        #expect(LLMStudioEngine.Family(provider: "anthropic", baseURL: "http://127.0.0.1:9") == .anthropic)
        #expect(LLMStudioEngine.Family(provider: "claude", baseURL: "https://api.anthropic.com") == .anthropic)
        #expect(LLMStudioEngine.Family(provider: "local", baseURL: "http://127.0.0.1:11434") == .ollama)
        #expect(LLMStudioEngine.Family(provider: "groq", baseURL: "https://api.groq.com/openai") == .openAI)
    }
}
