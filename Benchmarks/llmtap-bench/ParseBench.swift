import Foundation
import LLMTapAdapters
import NIOCore

/// `BENCH_PARSE=1 llmtap-bench`: how long the recorder takes to read a streamed response —
/// the SSE framing and the chunks' JSON (`ResponseParser`), no I/O — on an OpenAI-shaped body
/// of 24 events (a role chunk, 20 content chunks, the finish and usage chunks, `[DONE]`),
/// parsed whole as the proxy hands it over. Prints µs a body.
enum ParseBench {
    static func run() {
        var body = ""
        let prefix = #"{"id":"chatcmpl-Ab12Cd34Ef56Gh78Ij90","object":"chat.completion.chunk","created":1733580000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","#
        body += "data: " + prefix + #""choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"# + "\n\n"
        for k in 0..<20 { body += "data: " + prefix + #""choices":[{"index":0,"delta":{"content":" word\#(k)"},"logprobs":null,"finish_reason":null}]}"# + "\n\n" }
        body += "data: " + prefix + #""choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"# + "\n\n"
        body += "data: " + prefix + #""choices":[],"usage":{"prompt_tokens":50,"completion_tokens":20,"total_tokens":70}}"# + "\n\n"
        body += "data: [DONE]\n\n"
        let buffer = ByteBuffer(string: body)
        let n = 50_000
        var chars = 0
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<n {
            var parser = ResponseParser(api: .openAIChat, contentType: "text/event-stream")
            parser.feed(buffer, readEnds: [(end: buffer.readableBytes, time: 1)])
            chars += parser.finish(body: nil, at: 2).output?.count ?? 0
        }
        let took = Double(DispatchTime.now().uptimeNanoseconds - start) / Double(n) / 1000
        print(String(format: "%d bytes, 24 events: %.2f µs a body (its output: %d characters)", buffer.readableBytes, took, chars / n))
    }
}
