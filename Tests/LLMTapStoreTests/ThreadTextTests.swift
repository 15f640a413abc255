import LLMTapCore
@testable import LLMTapStore
import Testing

struct ThreadTextTests {
    /// `isUser` and `text(of:)` read the message itself; they answer as the normalized message
    /// (`Conversation.normalize`, the definition threading hashes) would.
    @Test(arguments: [
        #"{"role":"user","content":"Hi"}"#,
        #"{"content":"no role is a user turn"}"#,
        #"{"role":"assistant","content":"Hello."}"#,
        #"{"role":"system","content":""}"#,
        #"{"role":"user","content":null}"#,
        #"{"role":"user"}"#,
        #"{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"b"}]}"#,
        #"{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}"#,
        #"{"role":"user","content":[{"type":"text","text":""}]}"#,
        #"{"role":"user","content":["plain","parts"]}"#,
        #"{"role":"user","content":42}"#,
        #"{"role":7,"content":"a role that is not a string"}"#,
        #"{"role":"tool","tool_call_id":"call_1","content":"{\"ok\":true}"}"#,
        #"{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}"#,
        #"{"role":"User","content":"case matters"}"#,
    ])
    func readsAsTheNormalizedMessage(_ text: String) throws {
        let message = try #require(JSONValue.parse(Array(text.utf8)))
        let normalized = Conversation.normalize(message)
        #expect(ThreadText.isUser(message) == (normalized["role"]?.stringValue == "user"))
        #expect(ThreadText.text(of: message) == normalized["content"]?.plainText)
    }
}
