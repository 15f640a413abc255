@testable import LLMTapAdapters
import LLMTapCore
import LLMTapTestSupport
import NIOCore
import Testing

/// `OpenAIChat.parseResponse` reads the common completion with `JSONScanner` and every other
/// document with the full parse: for any body, the facts must be the ones the full parse gives.
struct CompletionScanTests {
    /// The recorded samples, and documents built to catch a scan that reads differently.
    static let documents: [String] = [
        WireSamples.completion,
        WireSamples.serverError,
        WireSamples.completionsResponse,
        #"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"logprobs":null,"finish_reason":"stop"}],"usage":null}"#,
        #"{"model":"m\u00e9\n","choices":[{"index":0,"message":{"content":"a \"quoted\" \ud83d\ude00 line\n"}}]}"#,
        #"{"choices":[{"index":1,"message":{"content":"second"},"finish_reason":"length"},{"index":0,"message":{"content":"first"},"finish_reason":"stop"}]}"#,
        #"{"choices":[{"index":2.0,"message":{"content":"x"}},{"index":"7","message":{"content":"y"}},{"message":{"content":"z"}}]}"#,
        #"{"choices":[{"message":{"content":"a","content":"b"}}]}"#,
        #"{"model":"one","model":"two","choices":[]}"#,
        #"{"choices":[{"delta":{"content":"from delta"}}]}"#,
        #"{"choices":[{"message":null,"delta":{"content":"hidden"}}]}"#,
        #"{"choices":[{"delta":{"content":"d"},"message":{"content":"m"}}]}"#,
        #"{"choices":[{"message":"odd","text":"t"}]}"#,
        #"{"choices":[{"message":{"content":null,"refusal":"no"}}]}"#,
        #"{"choices":[{"message":{"content":null},"text":"legacy"}]}"#,
        #"{"choices":[{"message":{"content":[{"type":"text","text":"part one"},{"type":"text","text":"part two"}]}}]}"#,
        #"{"choices":[{"message":{"content":{"text":"an object"}}}]}"#,
        #"{"choices":[{"message":{"content":7}}]}"#,
        #"{"choices":[{"message":{"content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#,
        #"{"choices":[{"index":1,"message":{"tool_calls":[{"id":"call_2","function":{"name":"g","arguments":"{}"}}]}}]}"#,
        #"{"choices":[{"message":{"content":"c","tool_calls":null}}]}"#,
        #"{"choices":[{"index":0,"text":"legacy","finish_reason":"stop"}]}"#,
        #"{"choices":[{"index":0,"message":{"content":5},"text":7,"finish_reason":3}]}"#,
        #"{"choices":[1,"x",null]}"#,
        #"{"choices":{"index":0}}"#,
        #"{"choices":null}"#,
        #"{"model":"no choices"}"#,
        #"{"usage":null,"error":null,"choices":[{"message":{"content":"ok"}}]}"#,
        #"{"usage":{"prompt_tokens":3,"completion_tokens":2},"choices":[]}"#,
        #"{"choices":[],"usage":5}"#,
        #"{"choices":[],"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}"#,
        #"{"choices":[],"usage":{"prompt_tokens":1,}}"#,
        #"{"error":{"message":"overloaded","type":"server_error"},"choices":[]}"#,
        #"{"error":"plain"}"#,
        #"{"choices":[{"message":{"content":"x"}}],"extra":{"deep":[1,2.5e3,true,false,null,"s\t"]}}"#,
        #"{"choices":[{"message":{"content":"x"}}],"extra":"bad \x"}"#,
        #"{"choices":[{"message":{"content":"x"}}],"extra":"\ud800"}"#,
        #"{"choices":[{"message":{"content":"x"}}]} trailing"#,
        #"{"choices":[{"message":{"content":"x"}}],}"#,
        #"{"choices":[{"message":{"content":"x"}}]"#,
        #"["not","an","object"]"#,
        #"{"mod\u0065l":"escaped","choices":[{"ind\u0065x":1,"m\u0065ssage":{"cont\u0065nt":"escaped keys"}}]}"#,
        #"{"\u0063hoices":[{"message":{"content":"c"}}],"choices":[]}"#,
        "  {\"choices\" : [ { \"message\" : { \"content\" : \"spaced\" } } ] }  ",
        "",
    ]

    @Test func theScanGivesWhatTheFullParseGives() {
        for document in Self.documents {
            let full = OpenAIChat.parseResponse(JSONValue.parse(Array(document.utf8)))
            #expect(OpenAIChat.parseResponse(ByteBuffer(string: document)) == full, "\(document)")
            let scanned = Array(document.utf8).withUnsafeBufferPointer { OpenAIChat.scanCompletion($0) }
            if let scanned { #expect(scanned == full, "\(document)") }
        }
    }

    /// The scan takes the completions providers send (else the test above checks nothing of it),
    /// and leaves to the full parse what it cannot read as the full parse does.
    @Test func theScanTakesTheCommonCompletionAndLeavesTheRest() throws {
        func scans(_ document: String) -> Bool {
            Array(document.utf8).withUnsafeBufferPointer { OpenAIChat.scanCompletion($0) } != nil
        }
        #expect(scans(WireSamples.completion))
        #expect(scans(WireSamples.completionsResponse))
        #expect(scans(Self.documents[5]))  // two choices
        let facts = try #require(Array(WireSamples.completion.utf8).withUnsafeBufferPointer { OpenAIChat.scanCompletion($0) })
        #expect(facts.output == "Paris is the capital of France.")
        #expect(facts.usage?.inputTokens == 2048 && facts.usage?.cachedInputTokens == 1024)
        #expect(facts.responseModel == "gpt-4o-mini-2024-07-18" && facts.finishReason == "stop" && facts.completed)
        #expect(!scans(WireSamples.serverError))
        #expect(!scans(Self.documents[15]))  // content parts
        #expect(!scans(Self.documents[18]))  // tool calls
        #expect(!scans(#"{"choices":[{"message":{"content":"x"}}]} trailing"#))
    }
}
