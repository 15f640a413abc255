/// Anthropic Messages and Ollama wire samples, in the shape those servers send.
extension WireSamples {
    public static func anthropicRequest(stream: Bool, model: String = "claude-3-5-haiku-20241022") -> String {
        #"{"model":"\#(model)","max_tokens":256,"system":"You are terse.","messages":[{"role":"user","content":"Capital of France?"}],"stream":\#(stream),"temperature":0.5}"#
    }

    /// A streamed answer with text, thinking and a tool call, as the SSE events Anthropic sends.
    public static let anthropicStream: String = [
        ("message_start", #"{"type":"message_start","message":{"id":"msg_01X","type":"message","role":"assistant","model":"claude-3-5-haiku-20241022","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000,"output_tokens":1}}}"#),
        ("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
        ("ping", #"{"type": "ping"}"#),
        ("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Paris"}}"#),
        ("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" it is."}}"#),
        ("content_block_stop", #"{"type":"content_block_stop","index":0}"#),
        ("content_block_start", #"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{}}}"#),
        ("content_block_delta", #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": "}}"#),
        ("content_block_delta", #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}"#),
        ("content_block_stop", #"{"type":"content_block_stop","index":1}"#),
        ("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}}"#),
        ("message_stop", #"{"type":"message_stop"}"#),
    ].map { "event: \($0.0)\ndata: \($0.1)\n\n" }.joined()

    public static let anthropicMessage =
        #"{"id":"msg_01Y","type":"message","role":"assistant","model":"claude-3-5-haiku-20241022","content":[{"type":"text","text":"Paris."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":20,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":4}}"#

    public static let anthropicOverloaded =
        #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#

    public static func ollamaChatRequest(stream: Bool?) -> String {
        let flag = stream.map { #","stream":\#($0)"# } ?? ""
        return #"{"model":"llama3.2","messages":[{"role":"user","content":"Why is the sky blue?"}],"options":{"temperature":0.1}\#(flag)}"#
    }

    /// `/api/chat` streamed: NDJSON lines, the last with `done: true` and the server's counts and clocks.
    public static let ollamaChatStream: String = [
        #"{"model":"llama3.2","created_at":"2026-11-22T10:00:00.000Z","message":{"role":"assistant","content":"Rayleigh"},"done":false}"#,
        #"{"model":"llama3.2","created_at":"2026-11-22T10:00:00.050Z","message":{"role":"assistant","content":" scattering."},"done":false}"#,
        #"{"model":"llama3.2","created_at":"2026-11-22T10:00:00.100Z","message":{"role":"assistant","content":""},"done_reason":"stop","done":true,"total_duration":2500000000,"load_duration":500000000,"prompt_eval_count":26,"prompt_eval_duration":100000000,"eval_count":4,"eval_duration":200000000}"#,
    ].map { $0 + "\n" }.joined()

    public static let ollamaChatResponse =
        #"{"model":"llama3.2","created_at":"2026-11-22T10:00:00.100Z","message":{"role":"assistant","content":"Rayleigh scattering."},"done_reason":"stop","done":true,"total_duration":2500000000,"load_duration":500000000,"prompt_eval_count":26,"prompt_eval_duration":100000000,"eval_count":4,"eval_duration":200000000}"#

    public static let ollamaGenerateStream: String = [
        #"{"model":"llama3.2","created_at":"2026-11-22T10:00:00.000Z","response":"The","done":false}"#,
        #"{"model":"llama3.2","created_at":"2026-11-22T10:00:00.020Z","response":" sky","done":false}"#,
        #"{"model":"llama3.2","created_at":"2026-11-22T10:00:00.040Z","response":"","done":true,"done_reason":"stop","context":[1,2,3],"total_duration":1000000000,"load_duration":1000000,"prompt_eval_count":5,"prompt_eval_duration":2000000,"eval_count":2,"eval_duration":40000000}"#,
    ].map { $0 + "\n" }.joined()
}
