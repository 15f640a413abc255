import Foundation
import LLMTapCore

/// `BENCH_CORPUS=single|session`: calls as real clients and providers make them, for the
/// size targets — varied text (not a repeated sentence), OpenAI's full chunk envelope on
/// every streamed token, usage, tool calls.
///
/// - `single`: one-turn calls of three apps (each with its own ~400-byte system prompt);
///   half streamed, half not.
/// - `session`: 20-turn conversations with a ~2 KB system prompt; each turn sends the whole
///   history again, as chat clients do; every fifth turn calls a tool and sends its result.
struct Corpus {
    private var state: UInt64

    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }

    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }

    static let words = """
        the of and to in is that for it as with was on be by this are or from at which an have not they \
        you we can more one all would there their will when what about if out up so them time some could \
        into than other these two may then do first any like now such our over also new just only most \
        model data answer question system value result error request response token cost latency user \
        server client stream memory cache query session record table index file network library function \
        method parameter service proxy upstream provider price database write read compress measure test \
        because between through during without within against although however therefore example number \
        people world year work part place case week company program government point group problem fact
        """.split(separator: " ").map(String.init)

    mutating func sentence(_ count: ClosedRange<Int>) -> String {
        let n = int(count)
        var words = (0..<n).map { _ in Self.words[int(0...(Self.words.count - 1))] }
        words[0] = words[0].prefix(1).uppercased() + words[0].dropFirst()
        return words.joined(separator: " ") + "."
    }

    mutating func paragraph(sentences: ClosedRange<Int>) -> String {
        (0..<int(sentences)).map { _ in sentence(6...18) }.joined(separator: " ")
    }

    static func chunk(_ id: String, _ delta: String, finish: String? = nil) -> String {
        let reason = finish.map { "\"\($0)\"" } ?? "null"
        return #"data: {"id":"\#(id)","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_0aa8d3e20b","choices":[{"index":0,"delta":\#(delta),"logprobs":null,"finish_reason":\#(reason)}],"usage":null}"#
            + "\n\n"
    }

    static func escaped(_ text: String) -> String {
        JSONValue.string(text).canonicalText
    }

    /// The raw response an OpenAI model gives to a call answering `answer`.
    mutating func response(answer: String, stream: Bool, promptTokens: Int) -> String {
        let id = "chatcmpl-" + String(next(), radix: 36) + String(next(), radix: 36)
        let completionTokens = answer.split(separator: " ").count * 4 / 3
        let usage = #"{"prompt_tokens":\#(promptTokens),"completion_tokens":\#(completionTokens),"total_tokens":\#(promptTokens + completionTokens),"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}"#
        guard stream else {
            return #"{"id":"\#(id)","object":"chat.completion","created":1733000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":\#(Self.escaped(answer)),"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":\#(usage),"service_tier":"default","system_fingerprint":"fp_0aa8d3e20b"}"#
        }
        var out = Self.chunk(id, #"{"role":"assistant","content":"","refusal":null}"#)
        var word = answer.split(separator: " ", omittingEmptySubsequences: false).makeIterator()
        var first = true
        while let piece = word.next() {
            out += Self.chunk(id, #"{"content":\#(Self.escaped((first ? "" : " ") + piece))}"#)
            first = false
        }
        out += Self.chunk(id, "{}", finish: "stop")
        out += #"data: {"id":"\#(id)","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_0aa8d3e20b","choices":[],"usage":\#(usage)}"#
            + "\n\n"
        return out + "data: [DONE]\n\n"
    }

    static func record(request: String, response: String, messages: [JSONValue], output: String, session: String?)
        -> CallRecord
    {
        var r = CallRecord(
            createdAt: Date().timeIntervalSince1970, provider: "openai", endpoint: "/v1/chat/completions",
            apiFormat: "openai.chat", latencyS: 0.8)
        r.model = "gpt-4o-mini"
        r.sessionID = session
        r.sessionSource = session == nil ? nil : .header
        r.parameters = .object(["temperature": .double(0.7)])
        r.context = .array(messages)
        r.chatInput = messages.last?["content"]?.stringValue
        r.output = output
        r.usage = Usage(inputTokens: Int64(request.utf8.count / 4), outputTokens: Int64(output.utf8.count / 4))
        r.requestBody = Array(request.utf8)
        r.responseBody = Array(response.utf8)
        return r
    }

    static func requestBody(_ messages: [JSONValue], stream: Bool) -> String {
        #"{"model":"gpt-4o-mini","messages":\#(JSONValue.array(messages).canonicalText),"temperature":0.7"#
            + (stream ? #","stream":true,"stream_options":{"include_usage":true}}"# : "}")
    }

    mutating func single(count: Int) -> [CallRecord] {
        let systems = (0..<3).map { _ in paragraph(sentences: 4...6) }
        return (0..<count).map { n in
            let stream = n % 2 == 0
            let messages: [JSONValue] = [
                .object(["role": .string("system"), "content": .string(systems[n % 3])]),
                .object(["role": .string("user"), "content": .string(paragraph(sentences: 1...3))]),
            ]
            let answer = paragraph(sentences: 2...8)
            let request = Self.requestBody(messages, stream: stream)
            return Self.record(
                request: request, response: response(answer: answer, stream: stream, promptTokens: request.utf8.count / 4),
                messages: messages, output: answer, session: nil)
        }
    }

    mutating func sessions(count: Int) -> [CallRecord] {
        var records: [CallRecord] = []
        var s = 0
        while records.count < count {
            s += 1
            var messages: [JSONValue] = [.object(["role": .string("system"), "content": .string(paragraph(sentences: 20...24))])]
            for turn in 0..<20 where records.count < count {
                messages.append(.object(["role": .string("user"), "content": .string(paragraph(sentences: 1...3))]))
                if turn % 5 == 4 {
                    let call = "call_" + String(next(), radix: 36)
                    messages.append(.object([
                        "role": .string("assistant"), "content": .null,
                        "tool_calls": .array([.object([
                            "id": .string(call), "type": .string("function"),
                            "function": .object(["name": .string("search"), "arguments": .string(#"{"query":"\#(sentence(3...6))"}"#)]),
                        ])]),
                    ]))
                    messages.append(.object(["role": .string("tool"), "tool_call_id": .string(call), "content": .string(paragraph(sentences: 3...6))]))
                }
                let answer = paragraph(sentences: 2...6)
                let stream = turn % 3 != 0
                let request = Self.requestBody(messages, stream: stream)
                records.append(
                    Self.record(
                        request: request, response: response(answer: answer, stream: stream, promptTokens: request.utf8.count / 4),
                        messages: messages, output: answer, session: "bench-session-\(s)"))
                messages.append(.object(["role": .string("assistant"), "content": .string(answer)]))
            }
        }
        return records
    }
}
