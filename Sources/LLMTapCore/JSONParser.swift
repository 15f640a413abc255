/// A strict RFC 8259 parser from UTF-8 bytes to `JSONValue`.
///
/// Written by hand rather than decoding `JSONValue` through `JSONDecoder`:
/// the proxy parses every request and response (and each SSE chunk) it
/// records, and the `Codable` route — a recursive enum probed type by type,
/// each failed probe a thrown error — cost about a quarter of the proxy's CPU
/// (perf, see Benchmarks/README.md). This parser is a single pass over the
/// bytes with no intermediate representation.
struct JSONParser {
    fileprivate let bytes: UnsafeBufferPointer<UInt8>
    fileprivate var i = 0
    fileprivate var depth = 0
    static let maximumDepth = 512
    /// The members and items of the objects and arrays still open, innermost last: each is
    /// built at its close with exactly the room it needs. Grown one member at a time, a
    /// dictionary was reallocated and rehashed at 1, 2, 4, 8 … members, an array reallocated:
    /// ~1 % of llmtap's CPU at 32 connections (perf), every request and response parsed.
    fileprivate var openMembers: [(key: String, value: JSONValue)] = []
    fileprivate var openItems: [JSONValue] = []

    fileprivate init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> JSONValue? {
        var parser = JSONParser(bytes)
        guard let value = parser.value() else { return nil }
        parser.skipWhitespace()
        return parser.i == bytes.count ? value : nil
    }

    fileprivate mutating func skipWhitespace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x0A, 0x0D, 0x09: i += 1
            default: return
            }
        }
    }

    fileprivate mutating func value() -> JSONValue? {
        skipWhitespace()
        guard i < bytes.count else { return nil }
        switch bytes[i] {
        case UInt8(ascii: "{"): return object()
        case UInt8(ascii: "["): return array()
        case UInt8(ascii: "\""): return string().map(JSONValue.string)
        case UInt8(ascii: "t"): return literal("true", .bool(true))
        case UInt8(ascii: "f"): return literal("false", .bool(false))
        case UInt8(ascii: "n"): return literal("null", .null)
        default: return number()
        }
    }

    fileprivate mutating func literal(_ word: StaticString, _ value: JSONValue) -> JSONValue? {
        let count = word.utf8CodeUnitCount
        guard i + count <= bytes.count else { return nil }
        for k in 0..<count where bytes[i + k] != word.utf8Start[k] { return nil }
        i += count
        return value
    }

    fileprivate mutating func object() -> JSONValue? {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maximumDepth else { return nil }
        i += 1
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
            i += 1
            return .object([:])
        }
        let first = openMembers.count
        while true {
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\""), let key = string() else { return nil }
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return nil }
            i += 1
            guard let member = value() else { return nil }
            openMembers.append((key, member))
            skipWhitespace()
            guard i < bytes.count else { return nil }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
            } else if bytes[i] == UInt8(ascii: "}") {
                i += 1
                var members = [String: JSONValue](minimumCapacity: openMembers.count - first)
                for member in openMembers[first...] { members[member.key] = member.value }  // the last of a repeated key wins
                openMembers.removeSubrange(first...)
                return .object(members)
            } else {
                return nil
            }
        }
    }

    fileprivate mutating func array() -> JSONValue? {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maximumDepth else { return nil }
        i += 1
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
            i += 1
            return .array([])
        }
        let first = openItems.count
        while true {
            guard let item = value() else { return nil }
            openItems.append(item)
            skipWhitespace()
            guard i < bytes.count else { return nil }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
            } else if bytes[i] == UInt8(ascii: "]") {
                i += 1
                let items = Array(openItems[first...])
                openItems.removeSubrange(first...)
                return .array(items)
            } else {
                return nil
            }
        }
    }

    fileprivate mutating func string() -> String? {
        i += 1  // opening quote
        let start = i
        // Fast path: no escapes.
        i = ByteSearch.stringRunEnd(UnsafeRawBufferPointer(bytes), from: i)
        guard i < bytes.count else { return nil }
        if bytes[i] == UInt8(ascii: "\"") {
            let s = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
            i += 1
            return s
        }
        var out = Array(UnsafeBufferPointer(rebasing: bytes[start..<i]))
        while i < bytes.count {
            let runEnd = ByteSearch.stringRunEnd(UnsafeRawBufferPointer(bytes), from: i)
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[i..<runEnd]))
            i = runEnd
            guard i < bytes.count else { return nil }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                i += 1
                return String(decoding: out, as: UTF8.self)
            }
            if b < 0x20 { return nil }
            i += 1  // the backslash
            guard i < bytes.count else { return nil }
            let escaped = bytes[i]
            i += 1
            switch escaped {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): out.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                guard var scalar = hex4() else { return nil }
                if (0xD800..<0xDC00).contains(scalar) {
                    // a surrogate pair: \uD83D\uDE00
                    guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u")
                    else { return nil }
                    i += 2
                    guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let unicode = Unicode.Scalar(scalar) else { return nil }
                out.append(contentsOf: Array(String(Character(unicode)).utf8))
            default:
                return nil
            }
        }
        return nil
    }

    private mutating func hex4() -> UInt32? {
        guard i + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            let digit: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
            i += 1
        }
        return value
    }

    fileprivate mutating func number() -> JSONValue? {
        let start = i
        guard let shape = numberShape() else { return nil }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        if shape.isInteger, let integer = Int64(text) { return .int(integer) }
        // A number beyond a double's range (`4e444`) has no value llmtap could store or write back
        // (RFC 7493 §2.2): the document is not taken as JSON.
        guard let number = Double(text), number.isFinite else { return nil }
        return .double(number)
    }

    /// Steps over a number, as strict as `number` without making its value: one with no
    /// exponent and up to 300 integer digits is within a double's range; any other is converted
    /// to be sure (`created`, `index` and the like in every stream chunk are stepped over).
    fileprivate mutating func skipNumber() -> Bool {
        let start = i
        guard let shape = numberShape() else { return false }
        if !shape.hasExponent, shape.integerDigits <= 300 { return true }
        i = start
        return number() != nil
    }

    /// Reads a number's grammar (RFC 8259 §6), leaving `i` after it; nil when it is not one.
    private mutating func numberShape() -> (isInteger: Bool, hasExponent: Bool, integerDigits: Int)? {
        var isInteger = true
        var hasExponent = false
        if i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
        let digitsStart = i
        while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
        guard i > digitsStart else { return nil }
        if bytes[digitsStart] == UInt8(ascii: "0"), i - digitsStart > 1 { return nil }  // no leading zeros
        let integerDigits = i - digitsStart
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            isInteger = false
            i += 1
            let fraction = i
            while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
            guard i > fraction else { return nil }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            isInteger = false
            hasExponent = true
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            let exponent = i
            while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
            guard i > exponent else { return nil }
        }
        return (isInteger, hasExponent, integerDigits)
    }
}

/// Walks a JSON document member by member, building a `JSONValue` only for what the caller
/// takes and stepping over the rest: a stream's chunk has a dozen members, of which the
/// record needs two or three (`OpenAIChat.StreamAccumulator`; parsing each whole chunk into
/// dictionaries was ~30 % of the recorder's time on streams). As strict as `JSONValue.parse`:
/// a document it refuses, this refuses too (`failed`).
public struct JSONScanner {
    private var parser: JSONParser
    /// The document is not JSON (or a walk stopped early): nothing read from it counts.
    public private(set) var failed = false

    public init(_ bytes: UnsafeBufferPointer<UInt8>) {
        parser = JSONParser(bytes)
    }

    private var next: UInt8? {
        mutating get {
            parser.skipWhitespace()
            return parser.i < parser.bytes.count ? parser.bytes[parser.i] : nil
        }
    }

    /// The value here is `null` (not consumed).
    public var isNull: Bool { mutating get { next == UInt8(ascii: "n") } }

    /// The value here is an object (not consumed).
    public var isObject: Bool { mutating get { next == UInt8(ascii: "{") } }

    /// The value here is an array (not consumed).
    public var isArray: Bool { mutating get { next == UInt8(ascii: "[") } }

    /// The value here, parsed.
    public mutating func value() -> JSONValue? {
        guard !failed, let value = parser.value() else {
            fail()
            return nil
        }
        return value
    }

    /// Steps over a `null` here, or parses the value here into `value`; false when the document
    /// is not JSON.
    public mutating func valueUnlessNull(into value: inout JSONValue?) -> Bool {
        if isNull {
            skip()
            return !failed
        }
        guard let parsed = self.value() else { return false }
        value = parsed
        return true
    }

    /// The string here, or nil after stepping over a value of another kind (`stringValue`).
    public mutating func stringValue() -> String? {
        guard !failed else { return nil }
        if next == UInt8(ascii: "\"") {
            guard let string = parser.string() else {
                fail()
                return nil
            }
            return string
        }
        skip()
        return nil
    }

    /// Steps over the value here, checking it is JSON.
    public mutating func skip() {
        guard !failed, let kind = next else {
            fail()
            return
        }
        switch kind {
        case UInt8(ascii: "{"):
            _ = members { _, scanner in
                scanner.skip()
                return true
            }
        case UInt8(ascii: "["):
            _ = elements { _, scanner in
                scanner.skip()
                return true
            }
        case UInt8(ascii: "\""):
            // Without an escape a string is its bytes; with one, the parser checks it.
            let end = ByteSearch.stringRunEnd(UnsafeRawBufferPointer(parser.bytes), from: parser.i + 1)
            if end < parser.bytes.count, parser.bytes[end] == UInt8(ascii: "\"") {
                parser.i = end + 1
                return
            }
            if parser.string() == nil { fail() }
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            if !parser.skipNumber() { fail() }
        default:
            if parser.value() == nil { fail() }
        }
    }

    /// At an object: hands each member's key to `member`, positioned at its value, which it
    /// takes or skips. False when this is no object, the JSON breaks, or `member` says stop.
    /// A key without escapes — every key the wire formats send — is handed over as its bytes:
    /// making a `String` of each key and comparing strings was about a quarter of the scan.
    public mutating func members(_ member: (JSONKey, inout JSONScanner) -> Bool) -> Bool {
        walk(UInt8(ascii: "{"), UInt8(ascii: "}")) { scanner in
            guard scanner.next == UInt8(ascii: "\"") else { return false }
            let bytes = scanner.parser.bytes
            let start = scanner.parser.i + 1
            let end = ByteSearch.stringRunEnd(UnsafeRawBufferPointer(bytes), from: start)
            if end < bytes.count, bytes[end] == UInt8(ascii: "\"") {
                scanner.parser.i = end + 1
                guard scanner.next == UInt8(ascii: ":") else { return false }
                scanner.parser.i += 1
                return member(JSONKey(utf8: UnsafeBufferPointer(rebasing: bytes[start..<end])), &scanner)
            }
            // Escapes (or a control character, which the parser refuses): the parser decodes it.
            guard let key = scanner.parser.string(), scanner.next == UInt8(ascii: ":") else { return false }
            scanner.parser.i += 1
            return Array(key.utf8).withUnsafeBufferPointer { member(JSONKey(utf8: $0), &scanner) }
        }
    }

    /// At an array: hands each element's position to `element`, which takes or skips it.
    public mutating func elements(_ element: (Int, inout JSONScanner) -> Bool) -> Bool {
        var position = 0
        return walk(UInt8(ascii: "["), UInt8(ascii: "]")) { scanner in
            defer { position += 1 }
            return element(position, &scanner)
        }
    }

    /// The items between `open` and `close`, separated by commas, each read by `item`.
    private mutating func walk(_ open: UInt8, _ close: UInt8, _ item: (inout JSONScanner) -> Bool) -> Bool {
        guard !failed, next == open else { return fail() }
        parser.depth += 1
        defer { parser.depth -= 1 }
        guard parser.depth <= JSONParser.maximumDepth else { return fail() }
        parser.i += 1
        if next == close {
            parser.i += 1
            return true
        }
        while true {
            guard item(&self), !failed else { return fail() }
            switch next {
            case UInt8(ascii: ","): parser.i += 1
            case close:
                parser.i += 1
                return true
            default: return fail()
            }
        }
    }

    /// The whole document was read and was JSON.
    public mutating func finished() -> Bool {
        !failed && next == nil
    }

    /// Marks the document refused; false, for the walks to return.
    @discardableResult
    private mutating func fail() -> Bool {
        failed = true
        return false
    }
}

/// An object member's key as `JSONScanner` reads it: its UTF-8 bytes, escapes decoded, valid
/// while the member is read. Matches string literals (`case "model":`, `key == "content"`).
public struct JSONKey {
    public let utf8: UnsafeBufferPointer<UInt8>

    /// Inlinable: every `case "…":` of a scan is one of these, and the scans are in another
    /// module — a call into this one each (`BENCH_PARSE=1 llmtap-bench`: 9 % of reading a
    /// streamed response; 3 % once the scanning module compiles its own copy).
    @inlinable
    public static func == (key: JSONKey, literal: StaticString) -> Bool {
        guard literal.utf8CodeUnitCount == key.utf8.count else { return false }
        for k in 0..<key.utf8.count where key.utf8[k] != literal.utf8Start[k] { return false }
        return true
    }

    @inlinable
    public static func ~= (literal: StaticString, key: JSONKey) -> Bool { key == literal }
}
