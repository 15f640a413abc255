import Foundation
import LLMTapCore

/// Request bodies stored as a template over shared fragments.
///
/// A chat client sends the whole conversation again on every turn — and the system prompt and
/// tool definitions on every call — so the raw request bodies of a 20-turn session repeat the
/// same bytes 20 times. Compression works within one body; this works across them: each
/// element of the body's top-level `messages`, `input` or `tools` array (and a long top-level
/// `system` or `instructions` string) of at least `minimumBytes` is stored once in `fragments`,
/// keyed by the SHA-256 of its exact bytes, and the body becomes a template — literal bytes
/// and fragment references — that gives back the exact original bytes.
///
/// Formats (`payloads.request_format`): 1 names each fragment by its 16-byte hash in the
/// template; 2 (since v9) marks each fragment's place with one byte and lists the fragments'
/// row ids in `payloads.fragment_ids`, as varint deltas: a 20-turn session's template was
/// mostly hashes (~400 of its ~480 bytes). 3 (since the one-byte blob format) is 2 with runs
/// of consecutive ids written as one count (`encode(ids:)`): the messages a turn adds are
/// stored one after another, so a session's list is a few runs. The audit chain covers the template and the
/// hashes of the fragments it uses, in order (whatever their ids); a fragment whose bytes no
/// longer hash to its key is caught by `verifyChain`.
enum PayloadFragments {
    static let minimumBytes = 40
    static let arrayKeys: Set<[UInt8]> = [Array("messages".utf8), Array("input".utf8), Array("tools".utf8)]
    static let stringKeys: Set<[UInt8]> = [Array("system".utf8), Array("instructions".utf8)]

    /// 16 bytes of SHA-256, as message hashes.
    static func hash(_ bytes: ArraySlice<UInt8>) -> Hash16 {
        bytes.withUnsafeBytes { Hash16(of: $0) }
    }

    static func hash(_ bytes: [UInt8]) -> Hash16 { Hash16(of: bytes) }

    /// The byte ranges worth storing once, in order; none when the body is not a JSON object.
    static func slices(_ body: [UInt8]) -> [Range<Int>] {
        var scanner = Scanner(bytes: body)
        return (try? scanner.topLevelSlices()) ?? []
    }

    /// The message among `hashes` that a fragment is (a chat message sent again), with the
    /// normalized JSON it is compressed against: most of its bytes, already in `messages`. The
    /// same bytes are rebuilt from the stored message to read it (`Store.normalizedMessage`).
    static func message(_ raw: ArraySlice<UInt8>, among hashes: Set<Hash16>) -> (Hash16, [UInt8])? {
        guard !hashes.isEmpty, raw.first == UInt8(ascii: "{"), let parsed = JSONValue.parse(raw), parsed["role"] != nil
        else { return nil }
        let normalized = Conversation.normalizedCanonicalBytes(parsed)
        let hash = Hash16(of: normalized)
        return hashes.contains(hash) ? (hash, normalized) : nil
    }

    /// A template: literal runs and fragments, in order.
    enum Piece: Equatable {
        case literal(ArraySlice<UInt8>)
        /// Format 1: a fragment named by its hash.
        case fragment(Data)
        /// Format 2: the next fragment of the payload's `fragment_ids`.
        case next
    }

    /// A format-2 template: `0x00, varint length, bytes` for a literal; `0x02` for a fragment.
    static func template(_ body: [UInt8], slices: [Range<Int>]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(body.count / 4 + 64)
        var copied = 0
        func literal(_ bytes: ArraySlice<UInt8>) {
            guard !bytes.isEmpty else { return }
            out.append(0)
            appendVarint(UInt64(bytes.count), to: &out)
            out.append(contentsOf: bytes)
        }
        for slice in slices {
            literal(body[copied..<slice.lowerBound])
            out.append(2)
            copied = slice.upperBound
        }
        literal(body[copied...])
        return out
    }

    /// The `request_format` of templates written now.
    static let currentFormat: Int64 = 3

    /// Fragment row ids (format 3) as varints: `zigzag(delta from the previous id) << 1`, or
    /// `count << 1 | 1` for the next `count` ids each one more than the one before (a count of
    /// 0: the next varint is a delta too large for the first form).
    static func encode(ids: [Int64]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8)
        var previous: Int64 = 0
        var run: UInt64 = 0
        func flush() {
            if run > 0 { appendVarint(run << 1 | 1, to: &out) }
            run = 0
        }
        for id in ids {
            if id == previous &+ 1, !out.isEmpty {
                run += 1
            } else {
                flush()
                let delta = id &- previous
                let zigzag = UInt64(bitPattern: (delta << 1) ^ (delta >> 63))
                if zigzag >> 63 == 0 {
                    appendVarint(zigzag << 1, to: &out)
                } else {  // no room for the flag: an empty run, then the delta on its own
                    appendVarint(1, to: &out)
                    appendVarint(zigzag, to: &out)
                }
            }
            previous = id
        }
        flush()
        return out
    }

    /// The ids `encode(ids:)` wrote (format 3), or format 2's plain zigzag deltas.
    static func decode(ids bytes: [UInt8], format: Int64) throws -> [Int64] {
        var ids: [Int64] = []
        var i = 0
        var previous: Int64 = 0
        while i < bytes.count {
            var value = try readVarint(bytes, at: &i)
            if format >= 3 {
                if value == 1 {
                    value = try readVarint(bytes, at: &i)
                } else if value & 1 == 1 {
                    let count = value >> 1
                    guard count <= UInt64(bytes.count) << 14 else {
                        throw PayloadCodec.Failure(description: "fragment id run of \(count)")
                    }
                    for _ in 0..<count {
                        previous &+= 1
                        ids.append(previous)
                    }
                    continue
                } else {
                    value >>= 1
                }
            }
            previous &+= Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1)
            ids.append(previous)
        }
        return ids
    }

    static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var n = value
        repeat {
            out.append(UInt8(n & 0x7F) | (n > 0x7F ? 0x80 : 0))
            n >>= 7
        } while n > 0
    }

    static func readVarint(_ bytes: [UInt8], at i: inout Int) throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard i < bytes.count, shift < 64 else { throw PayloadCodec.Failure(description: "bad template") }
            let byte = bytes[i]
            i += 1
            value |= UInt64(byte & 0x7F) << shift
            shift += 7
            if byte & 0x80 == 0 { return value }
        }
    }

    static func pieces(_ template: [UInt8]) throws -> [Piece] {
        var pieces: [Piece] = []
        var i = 0
        while i < template.count {
            let tag = template[i]
            i += 1
            switch tag {
            case 0:
                let length = try readVarint(template, at: &i)
                guard length <= UInt64(template.count - i) else { throw PayloadCodec.Failure(description: "bad template") }
                pieces.append(.literal(template[i..<(i + Int(length))]))
                i += Int(length)
            case 1:
                guard template.count - i >= 16 else { throw PayloadCodec.Failure(description: "bad template") }
                pieces.append(.fragment(Data(template[i..<(i + 16)])))
                i += 16
            case 2:
                pieces.append(.next)
            default:
                throw PayloadCodec.Failure(description: "bad template")
            }
        }
        return pieces
    }

    /// Scans a JSON object's bytes without decoding them.
    struct Scanner {
        struct Malformed: Error {}
        let bytes: [UInt8]
        var i = 0

        mutating func topLevelSlices() throws -> [Range<Int>] {
            var found: [Range<Int>] = []
            skipSpace()
            try expect(UInt8(ascii: "{"))
            skipSpace()
            if peek == UInt8(ascii: "}") { return [] }
            while true {
                skipSpace()
                let keyStart = i
                try skipString()
                let key = Array(bytes[(keyStart + 1)..<(i - 1)])
                skipSpace()
                try expect(UInt8(ascii: ":"))
                skipSpace()
                let valueStart = i
                if PayloadFragments.arrayKeys.contains(key), peek == UInt8(ascii: "[") {
                    i += 1
                    skipSpace()
                    if peek == UInt8(ascii: "]") {
                        i += 1
                    } else {
                        while true {
                            skipSpace()
                            let elementStart = i
                            try skipValue()
                            if i - elementStart >= minimumBytes { found.append(elementStart..<i) }
                            skipSpace()
                            if peek == UInt8(ascii: ",") { i += 1; continue }
                            try expect(UInt8(ascii: "]"))
                            break
                        }
                    }
                } else {
                    try skipValue()
                    if PayloadFragments.stringKeys.contains(key), bytes[valueStart] == UInt8(ascii: "\""), i - valueStart >= minimumBytes {
                        found.append(valueStart..<i)
                    }
                }
                skipSpace()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                try expect(UInt8(ascii: "}"))
                return found
            }
        }

        var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func expect(_ byte: UInt8) throws {
            guard peek == byte else { throw Malformed() }
            i += 1
        }

        mutating func skipSpace() {
            while let b = peek, b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { i += 1 }
        }

        mutating func skipString() throws {
            try expect(UInt8(ascii: "\""))
            guard let end = bytes.withUnsafeBytes({ ByteSearch.stringEnd($0, from: i) }) else { throw Malformed() }
            i = end
        }

        mutating func skipValue() throws {
            guard let b = peek else { throw Malformed() }
            switch b {
            case UInt8(ascii: "\""): try skipString()
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                while let c = peek {
                    switch c {
                    case UInt8(ascii: "\""): try skipString(); continue
                    case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                        if depth == 0 {
                            i += 1
                            return
                        }
                    default: break
                    }
                    i += 1
                }
                throw Malformed()
            default:
                let start = i
                while let c = peek, ![UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x0A, 0x0D, 0x09].contains(c) {
                    i += 1
                }
                guard i > start else { throw Malformed() }
            }
        }
    }
}
