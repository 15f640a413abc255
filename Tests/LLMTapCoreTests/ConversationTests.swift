import Foundation
import LLMTapCore
import Testing

struct ConversationTests {
    /// The message shapes clients send, and odd ones: the direct writer of a normalized
    /// message's canonical bytes (what threading hashes) gives exactly what normalizing, then
    /// serializing, gives. A byte of difference would split every stored conversation in two.
    static let messages: [String] = [
        #"{"role":"system","content":"You are terse."}"#,
        #"{"content":"Capital of France?","role":"user"}"#,
        #"{"role":"user","content":[{"type":"text","text":"Part one"},{"type":"text","text":"part \"two\"\n"}]}"#,
        #"{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAA"}}]}"#,
        #"{"role":"user","content":["plain", {"type":"text","text":"mixed"}]}"#,
        #"{"role":"assistant","content":null,"refusal":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"search","arguments":"{\"q\":\"x\"}"}},{"type":"function","function":{"name":"n"}}]}"#,
        #"{"role":"assistant","content":"","tool_calls":[]}"#,
        #"{"role":"tool","tool_call_id":"call_1","content":"result é ✓ \u0001"}"#,
        #"{"role":"user","name":"alice","content":"hi"}"#,
        #"{"role":42,"content":{"weird":[1,2.5,true]},"name":7,"tool_call_id":null}"#,
        #"{"content":"no role"}"#,
        #"{}"#,
        #""not an object""#,
        #"[1,2]"#,
        #"{"role":"assistant","content":[{"type":"text","text":""}],"tool_calls":[{"id":5,"function":{"name":null,"arguments":3}}]}"#,
    ]

    @Test(arguments: messages)
    func normalizedCanonicalBytesAreTheNormalizedMessagesCanonicalBytes(_ text: String) throws {
        let message = try #require(JSONValue.parse(Array(text.utf8)))
        #expect(Conversation.normalizedCanonicalBytes(message) == Conversation.normalize(message).canonicalBytes, "\(text)")
    }
}
