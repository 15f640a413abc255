import Foundation
import LLMTapCore
import Testing

@testable import LLMTapStore

/// A call's hashes taken from its conversation's last call are exactly the hashes computed
/// afresh; only what is the same down to its bytes is taken.
struct ContextMemoTests {
    static func message(_ role: String, _ content: String) -> JSONValue {
        .object(["role": .string(role), "content": .string(content)])
    }

    /// A request body over these messages, and the byte ranges of its fragments.
    static func body(_ messages: [JSONValue]) -> ([UInt8], [Range<Int>]) {
        let body = Array((#"{"model":"gpt-4o-mini","messages":"# + JSONValue.array(messages).canonicalText + "}").utf8)
        return (body, PayloadFragments.slices(body))
    }

    static func turns(_ count: Int, system: String = "You answer questions about books.") -> [[JSONValue]] {
        var messages = [message("system", system)]
        return (0..<count).map { turn in
            messages.append(message("user", "Question \(turn): which edition of the atlas is the newest?"))
            defer { messages.append(message("assistant", "Answer \(turn): the ninth, from last spring.")) }
            return messages
        }
    }

    @Test func aConversationsNextCallTakesWhatItRepeatsAndHashesTheRest() {
        let memo = ContextMemo()
        var reused = 0
        for messages in Self.turns(6) {
            let (body, fragments) = Self.body(messages)
            let hashes = memo.hashes(messages: messages, body: body, fragments: fragments)
            #expect(hashes == ContextMemo.fresh(messages: messages, body: body, fragments: fragments))
            #expect(fragments.count == messages.count)
            // Every message and fragment of the call before it, which is all but the last two.
            #expect(memo.reused - reused == (messages.count == 2 ? 0 : 2 * (messages.count - 2)))
            reused = memo.reused
        }
        #expect(memo.count == 1)
    }

    /// A message canonically equivalent to the one before but not the same bytes (Swift's `==`
    /// calls them equal), or a fragment one byte different, is hashed afresh.
    @Test func onlyTheSameBytesAreTaken() {
        let memo = ContextMemo()
        let first = Self.turns(2)[1] + [Self.message("user", "And is the caf\u{E9} in the bookshop open on Sundays?")]
        let (body, fragments) = Self.body(first)
        _ = memo.hashes(messages: first, body: body, fragments: fragments)

        var changed = first
        changed[4] = Self.message("user", "And is the cafe\u{301} in the bookshop open on Sundays?")
        changed.append(Self.message("assistant", "Yes, from ten until four."))
        #expect(changed[4] == first[4] && ContextMemo.key(changed) == ContextMemo.key(first))
        let (changedBody, changedFragments) = Self.body(changed)
        #expect(changedFragments.count == changed.count)
        let hashes = memo.hashes(messages: changed, body: changedBody, fragments: changedFragments)
        #expect(hashes == ContextMemo.fresh(messages: changed, body: changedBody, fragments: changedFragments))
        #expect(hashes.messages[4] != Store.HashedMessage.hash(first[4]))

        // The same length, one byte apart: that fragment is hashed, the others are taken.
        var edited = changedBody
        let second = changedFragments[1]
        edited[second.upperBound - 3] ^= 0x01
        let before = memo.reused
        let editedHashes = memo.hashes(messages: changed, body: edited, fragments: changedFragments)
        #expect(editedHashes.fragments == ContextMemo.fresh(messages: [], body: edited, fragments: changedFragments).fragments)
        #expect(editedHashes.fragments[1] != hashes.fragments[1])
        #expect(memo.reused - before == changed.count + changedFragments.count - 1)
    }

    /// Conversations that share a system prompt are told apart by their first user message; past
    /// its byte limit the memo starts over rather than grow.
    @Test func conversationsAreKeptApartAndTheMemoStaysWithinItsLimit() {
        let memo = ContextMemo(byteLimit: 4_000)
        let a = Self.turns(2)[1]
        var b = a
        b[1] = Self.message("user", "Question 0: which edition of the novel is the newest?")
        #expect(ContextMemo.key(a) != ContextMemo.key(b))
        for messages in [a, b] {
            let (body, fragments) = Self.body(messages)
            _ = memo.hashes(messages: messages, body: body, fragments: fragments)
        }
        #expect(memo.count == 2)
        for n in 0..<40 {
            let messages = [Self.message("system", "Be brief."), Self.message("user", "Question \(n) of many, each its own conversation.")]
            let (body, fragments) = Self.body(messages)
            _ = memo.hashes(messages: messages, body: body, fragments: fragments)
            #expect(memo.count * (256 + 2 * body.count) <= 4_000)
        }
    }
}
