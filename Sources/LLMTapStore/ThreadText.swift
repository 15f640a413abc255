import GRDB
import LLMTapCore

/// A threaded call's `chat_input` and `output` are, nearly always, the text of its last user
/// message and of its reply — both already in the message store. The writer leaves them out
/// of the `calls` row when the stored messages give them back exactly, and sets a bit of
/// `text_from_thread` for each; readers (and retention, which must tell the search index what
/// it deletes) take them from the messages.
///
/// Both sides work on normalized messages: a message is stored in the form first seen, and
/// any form with the same hash normalizes to the same text. A call whose text differs (another
/// wire format's notion of the input, say) keeps it in its row.
enum ThreadText {
    static let chatInputBit: Int64 = 1
    static let outputBit: Int64 = 2

    /// The text of the last user message, messages given last first (`nil` when there is none).
    static func chatInput<Messages: Sequence<JSONValue>>(lastFirst messages: Messages) -> String? {
        for message in messages {
            let normalized = Conversation.normalize(message)
            if normalized["role"]?.stringValue == "user" { return normalized["content"]?.plainText }
        }
        return nil
    }

    /// The text of a reply message.
    static func output(reply: JSONValue) -> String? {
        Conversation.normalize(reply)["content"]?.plainText
    }

    /// `chat_input` and `output` of a `calls` row: its own, or from its messages.
    static func texts(
        stored: (chatInput: String?, output: String?), bits: Int64, contextNode: Int64?, replyNode: Int64?,
        reader: ContextReader, db: Database
    ) throws -> (chatInput: String?, output: String?) {
        var texts = stored
        if bits & chatInputBit != 0, var node = contextNode {
            texts.chatInput = nil
            while node != 0, let (message, parent) = try reader.node(node, db: db) {
                let normalized = Conversation.normalize(message)
                if normalized["role"]?.stringValue == "user" {
                    texts.chatInput = normalized["content"]?.plainText
                    break
                }
                node = parent
            }
        }
        if bits & outputBit != 0, let replyNode {
            texts.output = try reader.node(replyNode, db: db).flatMap { output(reply: $0.message) }
        }
        return texts
    }
}
