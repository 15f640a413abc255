import LLMTapAdapters
import LLMTapTestSupport
import NIOCore
import Testing

struct UsageChunkFilterTests {
    /// What the client gets through the filter, reading the upstream's stream in `size`-byte reads.
    func filtered(_ wire: String, readSize size: Int) -> String {
        var filter = OpenAIChat.UsageChunkFilter()
        var out = ""
        let bytes = Array(wire.utf8)
        for start in stride(from: 0, to: bytes.count, by: size) {
            out += String(buffer: filter.process(ByteBuffer(bytes: bytes[start..<min(start + size, bytes.count)])))
        }
        return out + String(buffer: filter.finish())
    }

    @Test(arguments: [1, 2, 13, 1 << 20])
    func restoresTheStreamTheClientAskedFor(readSize: Int) {
        for script in [WireSamples.text, WireSamples.toolCall] {
            #expect(filtered(script.bytes(includeUsage: true), readSize: readSize) == script.bytes(includeUsage: false))
        }
    }

    @Test func crlfStreams() {
        let crlf = { (s: String) in s.replacingOccurrences(of: "\n", with: "\r\n") }
        let script = WireSamples.text
        #expect(filtered(crlf(script.bytes(includeUsage: true)), readSize: 3) == crlf(script.bytes(includeUsage: false)))
    }

    @Test func leavesOtherStreamsAlone() {
        // usage on every chunk with real values, an error object, a cut last event
        for wire in [
            WireSamples.usageEveryChunk.bytes(includeUsage: false),
            WireSamples.errorMidStream.bytes(includeUsage: false),
            "data: {\"a\":1}\n\ndata: {\"b\":",
            // found by the fuzzer: a chunk ending in the quote that opens a string crashed the scan
            "data: {\"x\":\"\n\n", "data: {\"id\":\"c\",\"x\":\"\\\n\n",
        ] {
            #expect(filtered(wire, readSize: 5) == wire)
        }
    }

    @Test func removesUsageNullWhereverItStands() {
        let wire = "data: {\"usage\":null, \"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"\\\"usage\\\":null\"}}]}\n\n"
        let expected = "data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"\\\"usage\\\":null\"}}]}\n\n"
        #expect(filtered(wire, readSize: 4) == expected)
    }

    @Test func forwardsEachCompleteEventAtOnce() {
        var filter = OpenAIChat.UsageChunkFilter()
        let events = WireSamples.text.events(includeUsage: true)
        let first = filter.process(ByteBuffer(string: events[0]))
        #expect(String(buffer: first) == WireSamples.text.events(includeUsage: false)[0])
    }
}

struct SpacedUsageChunkTests {
    /// Servers that serialize with spaces (Python's json.dumps) are filtered the same way.
    @Test func spacedJSON() {
        var filter = OpenAIChat.UsageChunkFilter()
        let wire = "data: {\"id\": \"x\", \"choices\": [{\"delta\": {\"content\": \"hi\"}}], \"usage\": null}\n\n"
            + "data: {\"id\": \"x\", \"choices\": [ ], \"usage\": {\"prompt_tokens\": 3, \"completion_tokens\": 1}}\n\n"
            + "data: [DONE]\n\n"
        let out = String(buffer: filter.process(ByteBuffer(string: wire)))
        #expect(out == "data: {\"id\": \"x\", \"choices\": [{\"delta\": {\"content\": \"hi\"}}]}\n\ndata: [DONE]\n\n")
    }
}
