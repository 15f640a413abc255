import AsyncHTTPClient
import Foundation
import LLMTapCore
import LLMTapStore
import LLMTapTestSupport
import NIOCore
import Testing

extension Tap {
    /// GETs a path of the proxy listener.
    func proxyGet(_ path: String) async throws -> (status: Int, json: JSONValue?, body: String) {
        let response = try await client.execute(HTTPClientRequest(url: url(path)), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 16 << 20)
        return (Int(response.status.code), JSONValue.parse(body.readableBytesView), String(buffer: body))
    }
}

/// The LLMstudio engine endpoint: llmtap builds the provider call, answers LLMstudio's object, records it.
struct EngineTests {
    static let engineKey = "sk-engine-SECRET-77c1d0"
    static let llmstudioKeys = [
        "id", "choices", "created", "model", "object", "usage", "session_id", "chat_input", "chat_output", "context",
        "provider", "timestamp", "parameters", "metrics",
    ]
    static let metricKeys = [
        "input_tokens", "output_tokens", "total_tokens", "cost_usd", "latency_s", "time_to_first_token_s",
        "inter_token_latency_s", "tokens_per_second",
    ]

    @Test func nonStreamingCallAnswersTheLLMstudioObject() async throws {
        let store = try await Tap.run { tap in
            let body = #"{"api_key":"\#(Self.engineKey)","model":"gpt-4o-mini","chat_input":"Hello! Who are you?","parameters":{"temperature":1,"max_tokens":2048},"is_stream":false,"session_id":"sess-1"}"#
            let response = try await tap.post("/api/engine/chat/local", body: body)
            #expect(response.status.code == 200)
            let json = try #require(JSONValue.parse(Array(await Tap.read(response).bytes.utf8)))
            for key in Self.llmstudioKeys { #expect(json[key] != nil, "missing \(key)") }
            for key in Self.metricKeys { #expect(json["metrics"]?[key] != nil, "missing metrics.\(key)") }
            #expect(json["chat_output"]?.stringValue == "Paris is the capital of France.")
            #expect(json["chat_input"]?.stringValue == "Hello! Who are you?")
            #expect(json["session_id"]?.stringValue == "sess-1")
            #expect(json["provider"]?.stringValue == "local")
            #expect(json["metrics"]?["input_tokens"]?.intValue == 2048)
            #expect(json["parameters"]?["temperature"]?.intValue == 1)
            #expect(json["context"]?.arrayValue?.count == 1)
            // The provider call llmtap made: OpenAI's chat API, the body's key, nothing of the engine call.
            let sent = try #require(tap.upstream.requests.last)
            #expect(sent.path == "/v1/chat/completions")
            #expect(sent.header("authorization") == "Bearer \(Self.engineKey)")
            let upstreamBody = try #require(JSONValue.parse(sent.body))
            #expect(upstreamBody["api_key"] == nil && upstreamBody["max_tokens"]?.intValue == 2048)
            #expect(!String(decoding: sent.body, as: UTF8.self).contains(Self.engineKey))
        }
        let call = try #require(try store.calls().first)
        #expect(call.apiFormat == "llmstudio" && call.endpoint == "/api/engine/chat/local")
        #expect(call.sessionID == "sess-1" && call.sessionSource == .body)
        #expect(call.output == "Paris is the capital of France.")
        let expectedCost: Int64 = 1024 * 150 + 1024 * 75 + 8 * 600
        #expect(call.costNanoUSD == expectedCost)
        #expect(call.keyFingerprint != nil)
        try expectNoKeyOnDisk(store, key: Self.engineKey)
    }

    @Test func streamingCallSendsChunksThenTheFinalObject() async throws {
        let store = try await Tap.run { tap in
            let response = try await tap.post(
                "/api/engine/chat/local", body: #"{"model":"gpt-4o-mini","chat_input":"Hi","is_stream":true}"#)
            #expect(response.headers.first(name: "content-type") == "application/x-ndjson")
            let lines = await Tap.read(response).bytes.split(separator: "\n").compactMap { JSONValue.parse(Array($0.utf8)) }
            let chunks = lines.dropLast()
            #expect(chunks.map { $0["chat_output_stream"]?.stringValue ?? "?" } == ["Hello", " there", "!"])
            #expect(chunks.allSatisfy { $0["metrics"]?.isNull == true })
            let final = try #require(lines.last)
            #expect(final["chat_output"]?.stringValue == "Hello there!")
            #expect(final["metrics"]?["output_tokens"]?.intValue == 4)
            #expect(final["metrics"]?["time_to_first_token_s"]?.isNull == false)
            let last = try #require(tap.upstream.requests.last)
            let sent = try #require(JSONValue.parse(last.body))
            #expect(sent["stream"]?.boolValue == true && sent["stream_options"]?["include_usage"]?.boolValue == true)
        }
        let call = try #require(try store.calls().first)
        #expect(call.isStream && call.output == "Hello there!" && call.usage?.source == .upstream)
        #expect(call.ttftS != nil && call.sessionSource == .auto, "no session in the call: llmtap threads it")
    }

    @Test func anthropicAndOllamaProvidersSpeakTheirOwnAPIs() async throws {
        let store = try await Tap.run(configure: { $0.providerKeys["anthropic"] = Self.engineKey }) { tap in
            let anthropic = try await tap.post(
                "/api/engine/chat/anthropic",
                body: #"{"model":"claude-3-5-haiku-20241022","chat_input":[{"role":"system","content":"Be terse."},{"role":"user","content":"Capital?"}]}"#)
            let message = try #require(JSONValue.parse(Array(await Tap.read(anthropic).bytes.utf8)))
            #expect(message["chat_output"]?.stringValue == "Paris.")
            let sent = try #require(tap.upstream.requests.last)
            #expect(sent.path == "/v1/messages" && sent.header("x-api-key") == Self.engineKey)
            #expect(sent.header("anthropic-version") != nil)
            #expect(JSONValue.parse(sent.body)?["system"]?.stringValue == "Be terse.")

            let ollama = try await tap.post(
                "/api/engine/chat/ollama", body: #"{"model":"llama3.2","chat_input":"Why?","is_stream":true}"#)
            let lines = await Tap.read(ollama).bytes.split(separator: "\n").compactMap { JSONValue.parse(Array($0.utf8)) }
            #expect(lines.dropLast().map { $0["chat_output_stream"]?.stringValue ?? "?" } == ["Rayleigh", " scattering."])
            #expect(lines.last?["metrics"]?["input_tokens"]?.intValue == 26)
            #expect(tap.upstream.requests.last?.path == "/api/chat")
        }
        let calls = try store.calls()
        #expect(calls.map(\.provider) == ["anthropic", "ollama"])
        let anthropicCost: Int64 = 20 * 800 + 4 * 4000
        #expect(calls[0].costNanoUSD == anthropicCost)
        #expect(calls[1].costNanoUSD == nil && calls[1].serverMetrics?["eval_duration_s"] != nil)
    }

    @Test func badCallsGetClearErrorsAndProviderErrorsPassThrough() async throws {
        let store = try await Tap.run { tap in
            let unknown = try await tap.post("/api/engine/chat/nope", body: #"{"model":"m","chat_input":"x"}"#)
            #expect(unknown.status.code == 404)
            let message = await Tap.read(unknown).bytes
            #expect(message.contains("nope") && message.contains("anthropic"))
            let invalid = try await tap.post("/api/engine/chat/local", body: #"{"model":"m"}"#)
            #expect(invalid.status.code == 400)
            #expect(await Tap.read(invalid).bytes.contains("chat_input"))
            let failing = try await tap.post("/api/engine/chat/local", body: #"{"model":"http-500","chat_input":"x"}"#)
            #expect(failing.status.code == 500)
            #expect(await Tap.read(failing).bytes == WireSamples.serverError)
        }
        let call = try #require(try store.calls().first)
        #expect(try store.calls().count == 1)
        #expect(call.outcome == .upstreamError && call.errorType == "server_error")
    }

    @Test func providersModelsAndHealth() async throws {
        _ = try await Tap.run(configure: { $0.providerKeys["openai"] = Self.engineKey }) { tap in
            let providers = try await tap.proxyGet("/api/engine/providers")
            #expect(providers.status == 200)
            #expect(providers.json?["openai"]?["models"]?.arrayValue?.contains(.string("gpt-4o-mini")) == true)
            #expect(providers.json?["openai"]?["key_configured"]?.boolValue == true)
            #expect(providers.json?["anthropic"]?["api"]?.stringValue == "anthropic")
            #expect(providers.json?["local"] != nil)
            #expect(!providers.body.contains(Self.engineKey))
            let models = try await tap.proxyGet("/api/engine/models?provider=anthropic")
            #expect((models.json?["models"]?.arrayValue?.count ?? 0) > 3)
            #expect(try await tap.proxyGet("/api/engine/models?provider=nope").status == 404)
            let health = try await tap.proxyGet("/health")
            #expect(health.status == 200 && health.json?["status"]?.stringValue == "healthy")
        }
    }
}

/// The bytes of `key` are in no file beside the database.
func expectNoKeyOnDisk(_ store: Store, key: String) throws {
    let dir = URL(fileURLWithPath: store.path).deletingLastPathComponent()
    for file in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
        let data = try Data(contentsOf: dir.appendingPathComponent(file))
        #expect(data.range(of: Data(key.utf8)) == nil, "key found in \(file)")
    }
}

/// OpenAI's other APIs through the proxy, and model aliases.
struct OpenAIAPIsTests {
    @Test(arguments: [false, true])
    func responses(stream: Bool) async throws {
        let store = try await Tap.run { tap in
            let response = try await tap.post("/v1/responses", body: WireSamples.responsesRequest(stream: stream))
            #expect(await Tap.read(response).bytes == (stream ? WireSamples.responsesStream : WireSamples.responsesResponse))
            #expect(tap.upstream.requests.last?.body == Array(WireSamples.responsesRequest(stream: stream).utf8))
        }
        let call = try #require(try store.calls().first)
        #expect(call.apiFormat == "openai.responses" && call.isStream == stream)
        #expect(call.output == "Paris is the capital." && call.chatInput == "Capital of France?")
        #expect(call.usage?.inputTokens == 36 && call.usage?.outputTokens == 8 && call.usage?.source == .upstream)
        let expectedCost: Int64 = 36 * 400 + 8 * 1600
        #expect(call.costNanoUSD == expectedCost)
        #expect(call.context?.arrayValue?.first?["role"]?.stringValue == "system")
        if stream { #expect(call.ttftS != nil && call.itlS != nil) }
    }

    @Test func embeddingsCompletionsAndModels() async throws {
        let store = try await Tap.run { tap in
            let embeddings = try await tap.post("/v1/embeddings", body: WireSamples.embeddingsRequest)
            #expect(await Tap.read(embeddings).bytes == WireSamples.embeddingsResponse)
            let completions = try await tap.post("/v1/completions", body: WireSamples.completionsRequest(stream: true))
            let streamed = await Tap.read(completions).bytes
            #expect(!streamed.contains("usage"), "the injected usage chunk is not the client's")
            #expect(streamed.contains(" is a test") && streamed.hasSuffix("data: [DONE]\n\n"))
            let models = try await tap.proxyGet("/v1/models")
            #expect(models.body == WireSamples.modelList)
            let listed = try await tap.api("/api/requests?limit=5").json?["requests"]?.arrayValue ?? []
            #expect(listed.first { $0["api_format"]?.stringValue == "openai.embeddings" }?["input_count"]?.intValue == 2)
        }
        let calls = try store.calls()
        #expect(calls.map(\.apiFormat) == ["openai.embeddings", "openai.completions", "generic"])
        #expect(calls[0].context?.arrayValue?.count == 2 && calls[0].usage?.inputTokens == 8 && calls[0].costNanoUSD == 160)
        #expect(calls[0].output == nil && !calls[0].usageChecks.contains(.usageMissing))
        #expect(calls[1].usageInjected && calls[1].output == "This is a test")
        #expect(calls[1].usage?.outputTokens == 4 && calls[1].usage?.source == .upstream)
        #expect(calls[2].endpoint == "/v1/models" && calls[2].httpStatus == 200)
    }

    @Test func anUpstreamSpeakingAnotherFormatIsPassedThroughAndRecordedAsGeneric() async throws {
        let store = try await Tap.run { tap in
            for stream in [false, true] {
                let response = try await tap.post(body: WireSamples.request(model: "html", stream: stream))
                #expect(response.status.code == 200)
                #expect(await Tap.read(response) == ("<html><body>Sign in</body></html>", true))
            }
        }
        for call in try store.calls() {
            #expect(call.apiFormat == "generic" && call.outcome == .ok)
            #expect(call.errorType == "unparsed_response" && call.errorMessage?.contains("text/html") == true)
            #expect(call.usage == nil && call.output == nil)
            #expect(try store.call(id: call.id)?.responseBody == Array("<html><body>Sign in</body></html>".utf8))
        }
    }

    @Test func aliasesRewriteOnlyListedModels() async throws {
        let store = try await Tap.run(configure: { $0.aliases = ["auto": "gpt-4o-mini"] }) { tap in
            _ = await Tap.read(try await tap.post(body: WireSamples.request(model: "auto", stream: false)))
            let rewritten = try #require(tap.upstream.requests.last)
            #expect(String(decoding: rewritten.body, as: UTF8.self) == WireSamples.request(model: "gpt-4o-mini", stream: false))
            _ = await Tap.read(try await tap.post(body: WireSamples.request(model: "gpt-4o", stream: false)))
            #expect(tap.upstream.requests.last?.body == Array(WireSamples.request(model: "gpt-4o", stream: false).utf8))
            let listed = try await tap.api("/api/requests")
            let first = listed.json?["requests"]?.arrayValue?.last
            #expect(first?["requested_model"]?.stringValue == "auto")
        }
        let calls = try store.calls()
        #expect(calls[0].model == "gpt-4o-mini" && calls[0].requestedModel == "auto" && calls[0].costNanoUSD != nil)
        #expect(calls[1].model == "gpt-4o" && calls[1].requestedModel == nil)
    }
}
