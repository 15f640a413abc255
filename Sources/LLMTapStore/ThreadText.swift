import Foundation
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

    /// Whether a message is a user turn (a message without a role is one, as in threading),
    /// read without building its normalized form (the writer asks for every call).
    static func isUser(_ message: JSONValue) -> Bool {
        Conversation.role(of: message) == "user"
    }

    /// A message's text, as `chat_input` and `output` hold it: its normalized form's
    /// `content` as plain text, which normalizing leaves out when it is empty.
    static func text(of message: JSONValue) -> String? {
        guard let text = message["content"]?.plainText, !text.isEmpty else { return nil }
        return text
    }

    /// `chat_input` and `output` of a `calls` row: its own, or from its messages.
    static func texts(
        stored: (chatInput: String?, output: String?), bits: Int64, contextNode: Int64?, replyNode: Int64?,
        reader: ContextReader, db: Database
    ) throws -> (chatInput: String?, output: String?) {
        var texts = stored
        if bits & chatInputBit != 0, let contextNode {
            texts.chatInput = try lastUser(from: contextNode, reader: reader, db: db).flatMap(text(of:))
        }
        if bits & outputBit != 0, let replyNode {
            texts.output = try reader.node(replyNode, db: db).flatMap { text(of: $0.message) }
        }
        return texts
    }

    /// The same, of a row read with the columns `chat_input`, `output`, `text_from_thread`,
    /// `context_node` and `reply_node` (what the search index was given for the call).
    static func texts(of row: Row, reader: ContextReader, db: Database) throws -> (chatInput: String?, output: String?) {
        try texts(
            stored: (row["chat_input"], row["output"]), bits: row["text_from_thread"] ?? 0,
            contextNode: row["context_node"], replyNode: row["reply_node"], reader: reader, db: db)
    }

    /// The last user message on the path ending at `node`.
    static func lastUser(from node: Int64, reader: ContextReader, db: Database) throws -> JSONValue? {
        var node = node
        while node != 0, let (message, parent) = try reader.node(node, db: db) {
            if isUser(message) { return message }
            node = parent
        }
        return nil
    }

    /// The stored hashes of the messages a row's text is read from, in the order the writer
    /// chained them; nil when one cannot be found.
    static func sources(bits: Int64, contextNode: Int64?, replyNode: Int64?, db: Database) throws -> [Hash16]? {
        let read = try db.cachedStatement(
            sql: "SELECT n.parent_id, m.hash, m.message FROM nodes n JOIN messages m ON m.id = n.message_id WHERE n.id = ?")
        func stored(_ node: Int64) throws -> (parent: Int64, hash: Hash16?, message: JSONValue?)? {
            guard let row = try Row.fetchOne(read, arguments: [node]) else { return nil }
            let text = try? PayloadCodec.decompress(row["message"], size: nil)
            return (row["parent_id"], Hash16(bytes: row["hash"] as Data), text.flatMap { JSONValue.parse($0) })
        }
        var sources: [Hash16] = []
        if bits & chatInputBit != 0 {
            var node = contextNode ?? 0
            var found: Hash16?
            while node != 0, let (parent, hash, message) = try stored(node) {
                guard let message else { return nil }
                if isUser(message) {
                    found = hash
                    break
                }
                node = parent
            }
            guard let found else { return nil }
            sources.append(found)
        }
        if bits & outputBit != 0 {
            guard let replyNode, let hash = try stored(replyNode)?.hash else { return nil }
            sources.append(hash)
        }
        return sources
    }
}
