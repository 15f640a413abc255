import Foundation
import LLMTapCore
import Synchronization

/// The hashes of each conversation's last call: its context's messages and its request's
/// fragments. A chat client sends the whole history again every turn, so a call's context is
/// mostly the one before it; what is the same as there takes its hash from there instead of
/// being normalized and hashed again (20-turn session corpus: 24 messages a call, ~34 µs hashing
/// them and ~15 µs its fragments, of ~200 µs recording it).
///
/// Sameness is checked in full, never assumed: a message must be the same value down to its
/// bytes (`JSONValue.isIdentical`), a fragment the same bytes. The key only finds the
/// conversation's last call — its first two messages, sampled — and a wrong or stale entry
/// finds nothing the same, costing a hash as before.
final class ContextMemo: Sendable {
    struct Hashes: Equatable {
        var messages: [Hash16]
        var fragments: [Hash16]
    }

    private struct Entry {
        var messages: [JSONValue]
        var body: [UInt8]
        var fragments: [Range<Int>]
        var hashes: Hashes
        var bytes: Int
    }

    private struct State {
        var entries: [Int: Entry] = [:]
        var bytes = 0
    }

    private let state = Mutex(State())
    /// Hashes taken from a conversation's last call rather than computed (for tests).
    private let reusedCount = Atomic(0)
    /// Roughly the memory the entries may hold (their bodies and contexts); past it, all are
    /// dropped. 16 MB holds several hundred conversations of the 20-turn corpus; one whose entry
    /// was dropped hashes its next call afresh, once.
    let byteLimit: Int

    init(byteLimit: Int = 16 << 20) { self.byteLimit = byteLimit }

    /// The hashes of `messages` (of their normalized form, `Store.HashedMessage`) and of the
    /// `fragments` of `body` (`PayloadFragments.hash`), in order; then this call is the one its
    /// conversation's next call is compared with.
    func hashes(messages: [JSONValue], body: [UInt8], fragments: [Range<Int>]) -> Hashes {
        guard let key = Self.key(messages) else { return Self.fresh(messages: messages, body: body, fragments: fragments) }
        let last = state.withLock { $0.entries[key] }
        var hashes = Hashes(messages: [], fragments: [])
        var reused = 0
        hashes.messages.reserveCapacity(messages.count)
        for (index, message) in messages.enumerated() {
            if let last, index < last.messages.count, message.isIdentical(to: last.messages[index]) {
                hashes.messages.append(last.hashes.messages[index])
                reused += 1
            } else {
                hashes.messages.append(Store.HashedMessage.hash(message))
            }
        }
        hashes.fragments.reserveCapacity(fragments.count)
        for (index, slice) in fragments.enumerated() {
            if let last, index < last.fragments.count,
                body[slice].withUnsafeBytes({ x in last.body[last.fragments[index]].withUnsafeBytes { ByteSearch.same(x, $0) } })
            {
                hashes.fragments.append(last.hashes.fragments[index])
                reused += 1
            } else {
                hashes.fragments.append(PayloadFragments.hash(body[slice]))
            }
        }
        if reused > 0 { reusedCount.add(reused, ordering: .relaxed) }
        // The body and the messages are held (shared with the record, not copied): ~twice the body.
        let entry = Entry(messages: messages, body: body, fragments: fragments, hashes: hashes, bytes: 256 + 2 * body.count)
        state.withLock { s in
            s.bytes -= s.entries[key]?.bytes ?? 0
            if s.bytes + entry.bytes > byteLimit {
                s.entries.removeAll()
                s.bytes = 0
            }
            s.entries[key] = entry
            s.bytes += entry.bytes
        }
        return hashes
    }

    /// Every hash computed afresh, nothing remembered.
    static func fresh(messages: [JSONValue], body: [UInt8], fragments: [Range<Int>]) -> Hashes {
        Hashes(messages: messages.map(Store.HashedMessage.hash), fragments: fragments.map { PayloadFragments.hash(body[$0]) })
    }

    /// Conversations remembered.
    var count: Int { state.withLock { $0.entries.count } }

    /// Message and fragment hashes taken from a conversation's last call so far.
    var reused: Int { reusedCount.load(ordering: .relaxed) }

    /// A conversation's key: its first two messages' roles and the length, start and end of
    /// their text (the system prompt alone is shared by every conversation of an app).
    static func key(_ messages: [JSONValue]) -> Int? {
        guard !messages.isEmpty else { return nil }
        var hasher = Hasher()
        for message in messages.prefix(2) {
            guard case .object(let members) = message else {
                hasher.combine(0)
                continue
            }
            hasher.combine(members.count)
            hasher.combine(members["role"]?.stringValue)
            if case .string(let text)? = members["content"] {
                let bytes = text.utf8
                hasher.combine(bytes.count)
                for byte in bytes.prefix(32) { hasher.combine(byte) }
                for byte in bytes.suffix(32) { hasher.combine(byte) }
            }
        }
        return hasher.finalize()
    }
}
