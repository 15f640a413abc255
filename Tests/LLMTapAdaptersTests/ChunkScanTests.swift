@testable import LLMTapAdapters
import LLMTapCore
import LLMTapTestSupport
import Testing

/// `OpenAIChat.StreamAccumulator` reads the common chunk with `JSONScanner` and every other
/// one with the full parse: for any chunk, the facts must be the ones the full parse gives.
struct ChunkScanTests {
    /// Chunks of the recorded samples, and chunks built to catch a scan that reads differently:
    /// escapes, repeated keys, `delta` beside `message`, odd kinds where strings go, broken JSON.
    static let chunks: [String] =
        [WireSamples.text, WireSamples.toolCall, WireSamples.usageEveryChunk, WireSamples.errorMidStream]
        .flatMap { $0.events(includeUsage: true) }
        .flatMap { $0.split(separator: "\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) } }
        .filter { $0 != "[DONE]" }
        + [
            #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":"tok"},"logprobs":null,"finish_reason":null}]}"#,
            #"{"model":"m\u00e9\n","choices":[{"index":0,"delta":{"content":"a \"quoted\" \ud83d\ude00 line\n"}}]}"#,
            #"{"choices":[{"index":1,"delta":{"content":"second"}},{"index":0,"delta":{"content":"first"},"finish_reason":"length"}]}"#,
            #"{"choices":[{"index":2.0,"delta":{"content":"x"}},{"index":"7","delta":{"content":"y"}},{"delta":{"content":"z"}}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":"a","content":"b"}}]}"#,
            #"{"model":"one","model":"two","choices":[]}"#,
            #"{"choices":[{"index":0,"message":{"content":"from message"}}]}"#,
            #"{"choices":[{"index":0,"delta":null,"message":{"content":"hidden"}}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":"d"},"message":{"content":"m"}}]}"#,
            #"{"choices":[{"index":0,"message":{"content":"m"},"delta":"odd"}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":null,"refusal":"no"}}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":"","reasoning_content":"think"}}]}"#,
            #"{"choices":[{"index":0,"delta":{"reasoning":""}}]}"#,
            #"{"choices":[{"index":0,"delta":{"tool_calls":null,"content":"t"}}]}"#,
            #"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","function":{"name":"f","arguments":"{}"}}]}}]}"#,
            #"{"choices":[{"index":0,"text":"legacy","finish_reason":"stop"}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":5},"text":7,"finish_reason":3}]}"#,
            #"{"choices":[1,"x",null]}"#,
            #"{"choices":{"index":0}}"#,
            #"{"usage":null,"error":null,"choices":[{"delta":{"content":"ok"}}]}"#,
            #"{"usage":{"prompt_tokens":3,"completion_tokens":2},"choices":[]}"#,
            #"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13,"prompt_tokens_details":{"cached_tokens":2}}}"#,
            #"{"choices":[],"usage":5}"#,
            #"{"choices":[],"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}"#,
            #"{"choices":[],"usage":{"prompt_tokens":1,}}"#,
            #"{"error":{"message":"overloaded","type":"server_error"}}"#,
            #"{"error":"plain"}"#,
            #"{"choices":[{"index":0,"delta":{"content":"x"}}],"extra":{"deep":[1,2.5e3,true,false,null,"s\t"]}}"#,
            #"{"choices":[{"index":0,"delta":{"content":"x"}}],"extra":"bad \x"}"#,
            #"{"choices":[{"index":0,"delta":{"content":"x"}}],"extra":"\ud800"}"#,
            #"{"choices":[{"index":0,"delta":{"content":"x"}}],"extra":01}"#,
            #"{"choices":[{"index":0,"delta":{"content":"x"}}]} trailing"#,
            #"{"choices":[{"index":0,"delta":{"content":"x"}}],}"#,
            #"{"choices":[{"index":0,"delta":{"content":"x"}}]"#,
            #"["not","an","object"]"#,
            #"{"mod\u0065l":"escaped","choices":[{"ind\u0065x":1,"d\u0065lta":{"cont\u0065nt":"escaped keys"}}]}"#,
            #"{"model":"m","choices":[{"delta":{"content\"":"a quote in a key","content":"c"}}]}"#,
            #"{"model":"m","\u0063hoices":[{"delta":{"content":"c"}}],"choices":[]}"#,
            "{\"mo\tdel\":\"a tab in a key\",\"choices\":[]}",
            #"{"":"empty key","choices":[{"delta":{"":"x","content":"c"}}]}"#,
            "  {\"choices\" : [ { \"delta\" : { \"content\" : \"spaced\" } } ] }  ",
            "{\"choices\":[{\"delta\":{\"content\":\"raw\ttab\"}}]}",
            "",
        ]

    @Test func theScanReadsWhatTheFullParseReads() {
        for chunk in Self.chunks {
            var scanned = OpenAIChat.StreamAccumulator()
            var parsed = OpenAIChat.StreamAccumulator()
            // Twice each, so a choice's text accumulates and a later finish reason meets an earlier one.
            for time: UInt64 in [1, 2] {
                scanned.consume(SSEEvent(data: chunk), at: time)
                if let json = JSONValue.parse(Array(chunk.utf8)) { parsed.consume(json, at: time) }
            }
            #expect(scanned.result == parsed.result, "\(chunk)")
        }
    }

    /// The scan itself: members taken, skipped and refused as `JSONValue.parse` would.
    @Test func theScannerIsAsStrictAsTheParser() {
        for chunk in Self.chunks {
            var bytes = chunk
            let scanned = bytes.withUTF8 { buffer -> Bool in
                var scanner = JSONScanner(buffer)
                scanner.skip()
                return scanner.finished()
            }
            #expect(scanned == (JSONValue.parse(Array(chunk.utf8)) != nil), "\(chunk)")
        }
    }
}
