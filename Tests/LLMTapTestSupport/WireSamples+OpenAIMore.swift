/// OpenAI Responses, embeddings and legacy completions wire samples, shaped after
/// OpenAI's API reference (member order and fields as documented; ids shortened).
extension WireSamples {
    public static func responsesRequest(stream: Bool, tools: Bool = false) -> String {
        let tool =
            tools
            ? #","tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]"#
            : ""
        return #"{"model":"gpt-4.1-mini","instructions":"You are terse.","input":[{"role":"user","content":[{"type":"input_text","text":"Capital of France?"}]}],"stream":\#(stream),"temperature":0.3\#(tool)}"#
    }

    static func responseObject(status: String, output: String, usage: String) -> String {
        #"{"id":"resp_67ccd2bed1ec8190","object":"response","created_at":1741476542,"status":"\#(status)","error":null,"incomplete_details":null,"instructions":"You are terse.","max_output_tokens":null,"model":"gpt-4.1-mini-2025-04-14","output":[\#(output)],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":true,"temperature":0.3,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":\#(usage),"user":null,"metadata":{}}"#
    }

    static let responsesMessage =
        #"{"type":"message","id":"msg_67ccd2bf17f0","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Paris is the capital.","annotations":[]}]}"#
    static let responsesFunctionCall =
        #"{"type":"function_call","id":"fc_12345","call_id":"call_12345","name":"get_weather","arguments":"{\"city\":\"Paris\"}","status":"completed"}"#
    static let responsesUsage =
        #"{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":8,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":44}"#

    /// A non-streamed `response`.
    public static let responsesResponse = responseObject(
        status: "completed", output: responsesMessage, usage: responsesUsage)

    static func responsesEvents(_ events: [(String, String)]) -> String {
        events.enumerated().map { n, event in
            let data = #"{"type":"\#(event.0)","sequence_number":\#(n),"# + event.1.dropFirst()
            return "event: \(event.0)\ndata: \(data)\n\n"
        }.joined()
    }

    static let responsesStart: [(String, String)] = [
        ("response.created", #"{"response":\#(responseObject(status: "in_progress", output: "", usage: "null"))}"#),
        ("response.in_progress", #"{"response":\#(responseObject(status: "in_progress", output: "", usage: "null"))}"#),
    ]

    static let responsesTextEvents: [(String, String)] = [
        ("response.output_item.added", #"{"output_index":0,"item":{"id":"msg_67ccd2bf17f0","type":"message","status":"in_progress","role":"assistant","content":[]}}"#),
        ("response.content_part.added", #"{"item_id":"msg_67ccd2bf17f0","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}"#),
        ("response.output_text.delta", #"{"item_id":"msg_67ccd2bf17f0","output_index":0,"content_index":0,"delta":"Paris"}"#),
        ("response.output_text.delta", #"{"item_id":"msg_67ccd2bf17f0","output_index":0,"content_index":0,"delta":" is the capital."}"#),
        ("response.output_text.done", #"{"item_id":"msg_67ccd2bf17f0","output_index":0,"content_index":0,"text":"Paris is the capital."}"#),
        ("response.content_part.done", #"{"item_id":"msg_67ccd2bf17f0","output_index":0,"content_index":0,"part":{"type":"output_text","text":"Paris is the capital.","annotations":[]}}"#),
        ("response.output_item.done", #"{"output_index":0,"item":\#(responsesMessage)}"#),
    ]

    /// The text answer streamed as Responses events, ending in `response.completed`.
    public static let responsesStream = responsesEvents(
        responsesStart + responsesTextEvents + [
            ("response.completed", #"{"response":\#(responsesResponse)}"#)
        ])

    /// The same stream cut before `response.completed`: no usage, not complete.
    public static let responsesCutStream = responsesEvents(responsesStart + responsesTextEvents.prefix(4))

    /// A function call streamed: its arguments arrive as deltas.
    public static let responsesToolStream = responsesEvents(
        responsesStart + [
            ("response.output_item.added", #"{"output_index":0,"item":{"type":"function_call","id":"fc_12345","call_id":"call_12345","name":"get_weather","arguments":"","status":"in_progress"}}"#),
            ("response.function_call_arguments.delta", #"{"item_id":"fc_12345","output_index":0,"delta":"{\"city\":"}"#),
            ("response.function_call_arguments.delta", #"{"item_id":"fc_12345","output_index":0,"delta":"\"Paris\"}"}"#),
            ("response.function_call_arguments.done", #"{"item_id":"fc_12345","output_index":0,"arguments":"{\"city\":\"Paris\"}"}"#),
            ("response.output_item.done", #"{"output_index":0,"item":\#(responsesFunctionCall)}"#),
            ("response.completed", #"{"response":\#(responseObject(status: "completed", output: responsesFunctionCall, usage: #"{"input_tokens":60,"input_tokens_details":{"cached_tokens":0},"output_tokens":15,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":75}"#))}"#),
        ])

    public static let responsesError =
        #"{"error":{"message":"Invalid 'input': empty array.","type":"invalid_request_error","param":"input","code":"empty_array"}}"#

    public static let embeddingsRequest =
        #"{"model":"text-embedding-3-small","input":["The food was delicious","The waiter was friendly"],"encoding_format":"float"}"#

    public static let embeddingsResponse =
        #"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255,-0.009327292,0.015797347]},{"object":"embedding","index":1,"embedding":[-0.0069754184,-0.005838922,0.013086646]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#

    public static let embeddingsError =
        #"{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","param":null,"code":null}}"#

    public static func completionsRequest(stream: Bool) -> String {
        #"{"model":"gpt-3.5-turbo-instruct","prompt":"Say this is a test","max_tokens":7,"temperature":0,"stream":\#(stream)}"#
    }

    public static let completionsResponse =
        #"{"id":"cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7","object":"text_completion","created":1589478378,"model":"gpt-3.5-turbo-instruct","system_fingerprint":"fp_44709d6fcb","choices":[{"text":"\n\nThis is indeed a test","index":0,"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#

    /// Legacy completions streamed, with the usage chunk `include_usage` asks for.
    public static let completionsStream: String = [
        #"{"id":"cmpl-7","object":"text_completion","created":1690759702,"choices":[{"text":"This","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct","system_fingerprint":"fp_44709d6fcb","usage":null}"#,
        #"{"id":"cmpl-7","object":"text_completion","created":1690759702,"choices":[{"text":" is a test","index":0,"logprobs":null,"finish_reason":"length"}],"model":"gpt-3.5-turbo-instruct","system_fingerprint":"fp_44709d6fcb","usage":null}"#,
        #"{"id":"cmpl-7","object":"text_completion","created":1690759702,"choices":[],"model":"gpt-3.5-turbo-instruct","system_fingerprint":"fp_44709d6fcb","usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9}}"#,
        "[DONE]",
    ].map { "data: \($0)\n\n" }.joined()

    public static let ollamaToolResponse =
        #"{"model":"llama3.2","created_at":"2026-11-22T10:00:00.100Z","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]},"done_reason":"stop","done":true,"total_duration":900000000,"load_duration":1000000,"prompt_eval_count":90,"prompt_eval_duration":50000000,"eval_count":20,"eval_duration":400000000}"#

    public static let ollamaNotFound = #"{"error":"model \"nope\" not found, try pulling it first"}"#

    /// The model list `/v1/models` answers.
    public static let modelList =
        #"{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"system"}]}"#
}
