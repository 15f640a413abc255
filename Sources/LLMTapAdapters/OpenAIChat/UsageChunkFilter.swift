import LLMTapCore
import NIOCore

extension OpenAIChat {
    /// Undoes, on the bytes sent to the client, what `injectingUsage` changed
    /// upstream: with `include_usage` OpenAI adds `"usage":null` to every chunk
    /// and one usage-only chunk (`"choices":[]`) before `[DONE]`. The filter
    /// removes both, so the client receives the bytes it would have received
    /// without llmtap.
    ///
    /// It works on whole SSE events: bytes after the last complete event wait
    /// for the next read (a chunk is forwarded as soon as its event is whole,
    /// which for OpenAI-style servers is every read). Everything else passes
    /// byte for byte.
    public struct UsageChunkFilter: Sendable {
        private var pending: [UInt8] = []

        public init() {}

        /// The bytes to forward now for an upstream read.
        public mutating func process(_ chunk: ByteBuffer) -> ByteBuffer {
            pending.append(contentsOf: chunk.readableBytesView)
            var out = ByteBuffer()
            out.reserveCapacity(pending.count)
            var start = 0
            while let end = Self.endOfEvent(in: pending, from: start) {
                Self.rewrite(pending[start..<end], into: &out)
                start = end
            }
            pending.removeFirst(start)
            return out
        }

        /// What is left when the upstream ends (an incomplete last event), untouched.
        public mutating func finish() -> ByteBuffer {
            defer { pending.removeAll() }
            return ByteBuffer(bytes: pending)
        }

        /// The index just past the blank line that ends the event starting at `start`.
        static func endOfEvent(in bytes: [UInt8], from start: Int) -> Int? {
            bytes.withUnsafeBytes { raw in
                var lineStart = start
                while true {
                    let end = ByteSearch.lineEnd(raw, from: lineStart)
                    guard end < raw.count else { return nil }
                    var next = end + 1
                    if raw[end] == UInt8(ascii: "\r") {
                        if next == raw.count { return nil }  // its `\n` may be in the next read
                        if raw[next] == UInt8(ascii: "\n") { next += 1 }
                    }
                    if end == lineStart { return next }  // the blank line
                    lineStart = next
                }
            }
        }

        static func rewrite(_ event: ArraySlice<UInt8>, into out: inout ByteBuffer) {
            let prefix = Array("data:".utf8)
            guard event.starts(with: prefix) else {
                out.writeBytes(event)
                return
            }
            var valueStart = event.startIndex + prefix.count
            if valueStart < event.endIndex, event[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
            guard let lineEnd = event[valueStart...].firstIndex(where: { $0 == 10 || $0 == 13 }) else {
                out.writeBytes(event)
                return
            }
            let value = event[valueStart..<lineEnd]
            if isUsageOnlyChunk(value) { return }
            guard let range = TopLevelMember.range(of: "usage", nullValuedIn: value) else {
                out.writeBytes(event)
                return
            }
            out.writeBytes(event[event.startIndex..<range.lowerBound])
            out.writeBytes(event[range.upperBound...])
        }

        static func isUsageOnlyChunk(_ value: ArraySlice<UInt8>) -> Bool {
            // Cheap test first: only a chunk with an empty choices list is parsed.
            guard hasEmptyChoices(value), let json = JSONValue.parse(value)
            else { return false }
            guard let usage = json["usage"], !usage.isNull, json["error"] == nil else { return false }
            return json["choices"]?.arrayValue?.isEmpty ?? false
        }

        /// `"choices"`, optional spaces, `:`, optional spaces, `[`, optional spaces, `]`.
        static func hasEmptyChoices(_ value: ArraySlice<UInt8>) -> Bool {
            guard let key = value.firstRange(of: Array(#""choices""#.utf8)) else { return false }
            var i = key.upperBound
            func skipSpaces() { while i < value.endIndex, OpenAIChat.isJSONWhitespace(value[i]) { i += 1 } }
            for expected in [UInt8(ascii: ":"), UInt8(ascii: "["), UInt8(ascii: "]")] {
                skipSpaces()
                guard i < value.endIndex, value[i] == expected else { return false }
                i += 1
            }
            return true
        }
    }
}

/// Finds a top-level member of a JSON object by scanning its bytes, without
/// re-encoding anything, so the rest of the object keeps its exact bytes.
enum TopLevelMember {
    /// The byte range of `"key": null` in `object`, with the comma that joins it
    /// to its neighbour (the one before it, or after it when it comes first).
    static func range(of key: String, nullValuedIn object: ArraySlice<UInt8>) -> Range<Int>? {
        let keyBytes = Array(key.utf8)
        var depth = 0
        var i = object.startIndex
        var memberStart: Int?  // where the current member begins: its leading comma, or its key
        var leadingComma = false
        while i < object.endIndex {
            let b = object[i]
            switch b {
            case UInt8(ascii: "\""):
                let stringStart = i
                guard let end = skipString(object, from: i) else { return nil }  // unterminated: not an object
                i = end
                if depth == 1, memberStart != nil, let afterKey = Optional(i),
                    object[(stringStart + 1)..<(afterKey - 1)].elementsEqual(keyBytes)
                {
                    var j = skipWhitespace(object, from: afterKey)
                    guard j < object.endIndex, object[j] == UInt8(ascii: ":") else { continue }
                    j = skipWhitespace(object, from: j + 1)
                    let null = Array("null".utf8)
                    guard object[j...].starts(with: null) else { memberStart = nil; continue }
                    let valueEnd = j + null.count
                    if leadingComma { return memberStart!..<valueEnd }
                    // First member: take the comma after it (and the spaces after that) instead.
                    let next = skipWhitespace(object, from: valueEnd)
                    if next < object.endIndex, object[next] == UInt8(ascii: ",") {
                        return stringStart..<skipWhitespace(object, from: next + 1)
                    }
                    return stringStart..<valueEnd
                }
                memberStart = nil
                continue
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth == 1 {
                    memberStart = i + 1
                    leadingComma = false
                }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
            case UInt8(ascii: ","):
                if depth == 1 {
                    memberStart = i
                    leadingComma = true
                }
            default:
                break
            }
            i += 1
        }
        return nil
    }

    /// The byte ranges of the string values of top-level member `key` (quotes included) — more
    /// than one when the object repeats the key — or nil when one is missing a string value or
    /// the bytes are not a well-formed object (`members`).
    static func ranges(of key: String, stringValuedIn object: ArraySlice<UInt8>) -> [Range<Int>]? {
        guard let members = members(of: object) else { return nil }
        let keyBytes = Array(key.utf8)
        let values = members.filter { $0.key.elementsEqual(keyBytes) }.map(\.value)
        guard !values.isEmpty, values.allSatisfy({ object[$0.lowerBound] == UInt8(ascii: "\"") }) else { return nil }
        return values
    }

    /// The top-level members of a JSON object in order — each key's bytes between its quotes
    /// (escapes as written) and the byte range of its value — or nil when the bytes are not one
    /// object: a string that does not end, brackets that do not balance, a member that is not
    /// `"key": value`, anything but whitespace after it. Values are skipped, not parsed.
    static func members(of object: ArraySlice<UInt8>) -> [(key: ArraySlice<UInt8>, value: Range<Int>)]? {
        var i = skipWhitespace(object, from: object.startIndex)
        guard i < object.endIndex, object[i] == UInt8(ascii: "{") else { return nil }
        var found: [(key: ArraySlice<UInt8>, value: Range<Int>)] = []
        i = skipWhitespace(object, from: i + 1)
        var closed = i < object.endIndex && object[i] == UInt8(ascii: "}")
        while !closed {
            guard i < object.endIndex, object[i] == UInt8(ascii: "\""), let keyEnd = skipString(object, from: i)
            else { return nil }
            let key = object[(i + 1)..<(keyEnd - 1)]
            i = skipWhitespace(object, from: keyEnd)
            guard i < object.endIndex, object[i] == UInt8(ascii: ":") else { return nil }
            i = skipWhitespace(object, from: i + 1)
            guard let valueEnd = skipValue(object, from: i) else { return nil }
            found.append((key, i..<valueEnd))
            i = skipWhitespace(object, from: valueEnd)
            guard i < object.endIndex else { return nil }
            switch object[i] {
            case UInt8(ascii: ","): i = skipWhitespace(object, from: i + 1)
            case UInt8(ascii: "}"): closed = true
            default: return nil
            }
        }
        return skipWhitespace(object, from: i + 1) == object.endIndex ? found : nil
    }

    /// The index after the value starting at `start`: a string, an object or array whose
    /// strings end and brackets balance, or a literal or number (up to the next delimiter).
    private static func skipValue(_ bytes: ArraySlice<UInt8>, from start: Int) -> Int? {
        guard start < bytes.endIndex else { return nil }
        switch bytes[start] {
        case UInt8(ascii: "\""):
            return skipString(bytes, from: start)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            var i = start
            while i < bytes.endIndex {
                switch bytes[i] {
                case UInt8(ascii: "\""):
                    guard let end = skipString(bytes, from: i) else { return nil }
                    i = end
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return i + 1 }
                default:
                    break
                }
                i += 1
            }
            return nil
        default:
            var i = start
            while i < bytes.endIndex {
                let b = bytes[i]
                if b == UInt8(ascii: ",") || b == UInt8(ascii: "}") || b == UInt8(ascii: "]") || OpenAIChat.isJSONWhitespace(b) {
                    break
                }
                i += 1
            }
            return i > start ? i : nil
        }
    }

    /// The index after the string starting at `start`, or nil when it is not terminated.
    private static func skipString(_ bytes: ArraySlice<UInt8>, from start: Int) -> Int? {
        // `raw` starts at `bytes.startIndex`.
        bytes.withUnsafeBytes { raw in
            ByteSearch.stringEnd(raw, from: start + 1 - bytes.startIndex).map { bytes.startIndex + $0 }
        }
    }

    private static func skipWhitespace(_ bytes: ArraySlice<UInt8>, from start: Int) -> Int {
        var i = start
        while i < bytes.endIndex, OpenAIChat.isJSONWhitespace(bytes[i]) { i += 1 }
        return i
    }
}
