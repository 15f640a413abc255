import Foundation
import LLMTapCore
import LLMTapStore
import LLMTapTestSupport
import Testing

/// Anthropic Messages and Ollama through the proxy: bytes unchanged, calls recorded.
struct OtherAPIsTests {
    @Test(arguments: ["/anthropic/v1/messages", "/v1/messages"])
    func anthropicStream(path: String) async throws {
        let store = try await Tap.run { tap in
            let response = try await tap.post(path, body: WireSamples.anthropicRequest(stream: true), headers: [("x-api-key", Tap.secretKey)])
            #expect(await Tap.read(response).bytes == WireSamples.anthropicStream)
            #expect(tap.upstream.requests.last?.path == "/v1/messages")
            #expect(tap.upstream.requests.last?.body == Array(WireSamples.anthropicRequest(stream: true).utf8))  // nothing injected
        }
        let call = try #require(try store.calls().first)
        #expect(call.provider == "anthropic" && call.apiFormat == "anthropic.messages")
        #expect(call.output == "Paris it is.")
        #expect(call.usage?.cachedInputTokens == 1000 && call.usage?.cacheWriteInputTokens == 100)
        let expectedCost: Int64 = 25 * 800 + 1000 * 80 + 100 * 1000 + 42 * 4000
        #expect(call.costNanoUSD == expectedCost)
        #expect(call.toolCalls?.arrayValue?.count == 1)
        #expect(call.ttftS != nil && call.isStream)
        #expect(call.context?.arrayValue?.first?["content"] == .string("You are terse."))
        #expect(call.keyFingerprint != nil)
    }

    @Test func anthropicErrorPassesThrough() async throws {
        let store = try await Tap.run { tap in
            let response = try await tap.post("/anthropic/v1/messages", body: WireSamples.anthropicRequest(stream: false, model: "overloaded"))
            #expect(response.status.code == 529)
            #expect(await Tap.read(response).bytes == WireSamples.anthropicOverloaded)
        }
        let call = try #require(try store.calls().first)
        #expect(call.outcome == .upstreamError && call.errorType == "overloaded_error")
    }

    @Test(arguments: [("/api/chat", true), ("/ollama/api/chat", true), ("/api/generate", true), ("/api/chat", false)])
    func ollama(path: String, stream: Bool) async throws {
        let body = path.hasSuffix("generate")
            ? #"{"model":"llama3.2","prompt":"Why is the sky blue?"}"# : WireSamples.ollamaChatRequest(stream: stream ? nil : false)
        let expected = !stream ? WireSamples.ollamaChatResponse
            : path.hasSuffix("generate") ? WireSamples.ollamaGenerateStream : WireSamples.ollamaChatStream
        let store = try await Tap.run { tap in
            let response = try await tap.post(path, body: body)
            #expect(await Tap.read(response).bytes == expected)
        }
        let call = try #require(try store.calls().first)
        #expect(call.provider == "ollama")
        #expect(call.isStream == stream)
        #expect(call.usage?.source == .upstream)
        #expect(call.costNanoUSD == nil)  // a local model is unpriced unless the pricing file says otherwise
        #expect(call.usageChecks.contains(.costUnknown))
        #expect(call.serverMetrics?["eval_duration_s"] != nil)
        #expect(call.output == (path.hasSuffix("generate") ? "The sky" : "Rayleigh scattering."))
    }
}
