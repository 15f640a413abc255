import LLMTapAdapters
import LLMTapCore
import LLMTapTestSupport
import NIOCore
import Testing

/// Feeds `wire` in `size`-byte reads through an SSE parser into Anthropic's accumulator.
func anthropicFacts(_ wire: String, readSize size: Int) -> ResponseFacts {
    var parser = SSEStreamParser()
    var accumulator = AnthropicMessages.StreamAccumulator()
    let bytes = Array(wire.utf8)
    var time: UInt64 = 1
    for start in stride(from: 0, to: bytes.count, by: size) {
        parser.feed(ByteBuffer(bytes: bytes[start..<min(start + size, bytes.count)])) { accumulator.consume($0, at: time) }
        time += 1
    }
    parser.finish { accumulator.consume($0, at: time) }
    return accumulator.result
}

func ollamaFacts(_ wire: String, readSize size: Int) -> (ResponseFacts, [String: JSONValue]) {
    var parser = NDJSONStreamParser()
    var accumulator = Ollama.StreamAccumulator()
    let bytes = Array(wire.utf8)
    for start in stride(from: 0, to: bytes.count, by: size) {
        parser.feed(ByteBuffer(bytes: bytes[start..<min(start + size, bytes.count)])) { accumulator.consume($0, at: 1) }
    }
    parser.finish { accumulator.consume($0, at: 2) }
    let result = accumulator.result
    return (result, result.serverMetrics?.objectValue ?? [:])
}

struct AnthropicTests {
    @Test(arguments: [1, 9, 1 << 20])
    func streamWithTextToolUseAndCacheUsage(readSize: Int) throws {
        let facts = anthropicFacts(WireSamples.anthropicStream, readSize: readSize)
        #expect(facts.output == "Paris it is.")
        #expect(facts.finishReason == "tool_use")
        #expect(facts.responseModel == "claude-3-5-haiku-20241022")
        #expect(facts.completed)
        // input counts the cache reads and writes too; output from message_delta
        #expect(facts.usage == Usage(inputTokens: 1125, outputTokens: 42, cachedInputTokens: 1000, cacheWriteInputTokens: 100))
        let call = try #require(facts.toolCalls?.arrayValue?.first)
        #expect(call["id"] == .string("toolu_01A"))
        #expect(call["function"]?["arguments"] == .string(#"{"city": "Paris"}"#))
        #expect(facts.contentTimes.count == 4)
    }

    @Test func cacheReadsAndWritesArePricedApart() throws {
        let table = try PricingTable.bundled()
        let usage = Usage(inputTokens: 1125, outputTokens: 42, cachedInputTokens: 1000, cacheWriteInputTokens: 100)
        // claude-3-5-haiku: $0.80 in, $0.08 cache read, $1.00 cache write, $4.00 out per million
        let expected = NanoUSD(25 * 800 + 1000 * 80 + 100 * 1000 + 42 * 4000)
        #expect(table.cost(provider: "anthropic", model: "claude-3-5-haiku-20241022", usage: usage) == expected)
    }

    @Test func messageAndError() {
        let message = AnthropicMessages.parseResponse(ByteBuffer(string: WireSamples.anthropicMessage))
        #expect(message.output == "Paris.")
        #expect(message.finishReason == "end_turn")
        #expect(message.usage?.inputTokens == 20 && message.usage?.outputTokens == 4)
        let error = AnthropicMessages.parseResponse(ByteBuffer(string: WireSamples.anthropicOverloaded))
        #expect(error.errorType == "overloaded_error")
        #expect(error.errorMessage == "Overloaded")
        let midStream = anthropicFacts(
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n", readSize: 7)
        #expect(midStream.errorType == "overloaded_error" && !midStream.completed)
    }

    @Test func requestPutsSystemFirst() {
        let facts = AnthropicMessages.parseRequest(ByteBuffer(string: WireSamples.anthropicRequest(stream: true)))
        #expect(facts.context?.arrayValue?.first?["role"] == .string("system"))
        #expect(facts.chatInput == "Capital of France?")
        #expect(facts.parameters?["max_tokens"] == .int(256))
        #expect(facts.parameters?["system"] == nil)
        #expect(facts.isStream)
    }
}

struct OllamaTests {
    @Test(arguments: [1, 13, 1 << 20])
    func chatStreamWithServerClocks(readSize: Int) {
        let (facts, server) = ollamaFacts(WireSamples.ollamaChatStream, readSize: readSize)
        #expect(facts.output == "Rayleigh scattering.")
        #expect(facts.usage == Usage(inputTokens: 26, outputTokens: 4))
        #expect(facts.finishReason == "stop")
        #expect(facts.completed)
        #expect(server["eval_duration_s"] == .double(0.2))
        #expect(server["server_tokens_per_second"] == .double(20))
        #expect(server["load_duration_s"] == .double(0.5))
    }

    @Test func generateStreamAndSingleObject() {
        let (generated, _) = ollamaFacts(WireSamples.ollamaGenerateStream, readSize: 5)
        #expect(generated.output == "The sky")
        #expect(generated.usage?.outputTokens == 2)
        let (single, _) = ollamaFacts(WireSamples.ollamaChatResponse, readSize: 1 << 20)  // no trailing newline
        #expect(single.output == "Rayleigh scattering.")
        #expect(single.usage?.inputTokens == 26)
    }

    @Test func streamDefaultsToTrue() {
        #expect(Ollama.parseRequest(ByteBuffer(string: WireSamples.ollamaChatRequest(stream: nil)), generate: false).isStream)
        #expect(!Ollama.parseRequest(ByteBuffer(string: WireSamples.ollamaChatRequest(stream: false)), generate: false).isStream)
        let generate = Ollama.parseRequest(ByteBuffer(string: #"{"model":"llama3.2","prompt":"Hi","system":"Be brief"}"#), generate: true)
        #expect(generate.chatInput == "Hi")
        #expect(generate.context?.arrayValue?.count == 2)
    }
}
