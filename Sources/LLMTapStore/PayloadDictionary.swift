import CZlib

/// Preset zlib dictionaries (RFC 1950 §2.2) for payloads: the strings every chat payload
/// repeats — JSON members of the OpenAI, Anthropic, Ollama and Responses wire formats, SSE
/// framing — so that even a small body compresses as if it followed a hundred others.
///
/// A compressed payload names its dictionary by the dictionary's Adler-32 in the zlib
/// header, so dictionaries are versioned by content: a new one is appended here, the newest
/// compresses, and every one ever used stays for decompressing old rows. Rows written
/// without a dictionary (before version 1) decompress as before.
enum PayloadDictionary {
    struct Version: Sendable {
        let bytes: [UInt8]
        let id: UInt32

        init(_ text: String) {
            self.init(bytes: Array(text.utf8))
        }

        init(bytes: [UInt8]) {
            self.bytes = bytes
            id = bytes.withUnsafeBufferPointer { UInt32(adler32(1, $0.baseAddress, uInt($0.count))) }
        }
    }

    /// Every dictionary, oldest first; the last one compresses.
    static let versions: [Version] = [version1].map(Version.init)

    static var current: Version { versions[versions.count - 1] }

    /// For the pieces of a body stored on their own (messages, request fragments): their JSON
    /// framing only. Short, because setting a dictionary costs time in proportion to its
    /// length, paid per piece: the 6 KB payload dictionary took longer than compressing a
    /// 300-byte message. Versioned the same way: new ones are appended, the last compresses.
    static let pieceVersions: [Version] = [pieces1].map(Version.init)

    static var currentPieces: Version { pieceVersions[pieceVersions.count - 1] }

    static func version(id: UInt32) -> Version? { (versions + pieceVersions).first { $0.id == id } }

    /// Version 1 (2026-11): deflate finds matches up to 32 KiB back and codes nearer ones in
    /// fewer bits, so the commonest strings come last.
    static let version1 = #"""
        {"type":"function","function":{"name":"get_weather","description":"Get the current weather","parameters":{"type":"object","properties":{"location":{"type":"string","description":"The city and state"}},"required":["location"]}}}],"tool_choice":"auto","parallel_tool_calls":true,"response_format":{"type":"json_object"},"seed":42,"top_p":1,"presence_penalty":0,"frequency_penalty":0,"n":1,"user":"
        {"model":"llama3.2","created_at":"2026-01-01T00:00:00.000000Z","message":{"role":"assistant","content":""},"done_reason":"stop","done":true,"total_duration":,"load_duration":,"prompt_eval_count":,"prompt_eval_duration":,"eval_count":,"eval_duration":}
        {"model":"llama3.2","created_at":"2026-01-01T00:00:00.000000Z","response":"","done":false}
        {"model":"llama3.2","created_at":"2026-01-01T00:00:00.000000Z","message":{"role":"assistant","content":""},"done":false}
        "options":{"temperature":0.7,"num_predict":256},"stream":false,"keep_alive":"5m"
        event: response.created
        data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_","object":"response","created_at":,"status":"in_progress","model":"gpt-4o-mini-2024-07-18","output":[],"usage":null}}

        event: response.output_text.delta
        data: {"type":"response.output_text.delta","sequence_number":,"item_id":"msg_","output_index":0,"content_index":0,"delta":"

        event: response.completed
        data: {"type":"response.completed","response":{"id":"resp_","object":"response","status":"completed","output":[{"type":"message","id":"msg_","status":"completed","role":"assistant","content":[{"type":"output_text","annotations":[],"text":"
        "usage":{"input_tokens":,"input_tokens_details":{"cached_tokens":0},"output_tokens":,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":}
        {"model":"gpt-4o-mini","instructions":"You are a helpful assistant.","input":[{"role":"user","content":[{"type":"input_text","text":"
        {"model":"text-embedding-3-small","input":["],"encoding_format":"float"}
        {"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0,-0.0,]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":,"total_tokens":}}
        {"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":""}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":,"service_tier":"standard"}}
        {"model":"claude-sonnet-4-5","max_tokens":1024,"system":"You are a helpful assistant.","messages":[{"role":"user","content":"
        event: message_start
        data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}

        event: content_block_start
        data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

        event: ping
        data: {"type": "ping"}

        event: content_block_stop
        data: {"type":"content_block_stop","index":0}

        event: message_delta
        data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":}}

        event: message_stop
        data: {"type":"message_stop"}

        event: content_block_delta
        data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"
        {"id":"chatcmpl-","object":"chat.completion","created":,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":,"completion_tokens":,"total_tokens":,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_"}
        "tool_calls":[{"index":0,"id":"call_","type":"function","function":{"name":"","arguments":"{\"location\":\""}}]},"logprobs":null,"finish_reason":"tool_calls"}]}
        {"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"},{"role":"assistant","content":"},{"role":"tool","tool_call_id":"call_","content":"}],"temperature":0.7,"max_tokens":1024,"stream":true,"stream_options":{"include_usage":true}}
        data: {"id":"chatcmpl-","object":"chat.completion.chunk","created":,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}

        data: {"id":"chatcmpl-","object":"chat.completion.chunk","created":,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_","choices":[],"usage":{"prompt_tokens":,"completion_tokens":,"total_tokens":,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}

        data: [DONE]

        data: {"id":"chatcmpl-","object":"chat.completion.chunk","created":,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}

        data: {"id":"chatcmpl-","object":"chat.completion.chunk","created":,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":null}]}

        data: {"id":"chatcmpl-","object":"chat.completion.chunk","created":,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":null}],"usage":null}


        """#

    /// Pieces version 1 (2026-11): messages as clients send them and as llmtap stores them
    /// (canonical JSON, sorted keys), commonest last.
    static let pieces1 = #"""
        {"type":"image_url","image_url":{"url":"data:image/png;base64,"}}{"type":"text","text":"
        "tool_calls":[{"id":"call_","type":"function","function":{"name":"","arguments":"{\"query\":\""}}]
        {"role":"tool","tool_call_id":"call_","content":"{"content":"","role":"tool","tool_call_id":"call_"}
        {"arguments":"{\"query\":\"","id":"call_","name":""}{"content":null,"role":"assistant","tool_calls":[
        {"role":"system","content":"You are a helpful assistant. {"content":"","role":"system"}
        {"role": "user", "content": "{"role": "assistant", "content": "
        {"role":"assistant","content":"{"content":"","role":"assistant"}
        {"role":"user","content":"{"content":"","role":"user"}
        """#
}
