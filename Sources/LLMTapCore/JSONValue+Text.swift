import Foundation

extension JSONValue {
    /// Parses a JSON document; `nil` when the bytes are not JSON.
    public static func parse<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> JSONValue? {
        if let value = bytes.withContiguousStorageIfAvailable({ JSONParser.parse($0) }) { return value }
        return Array(bytes).withUnsafeBufferPointer { JSONParser.parse($0) }
    }

    /// Compact JSON text with sorted keys, so equal values give equal text
    /// (the form stored in the database and hashed for threading).
    ///
    /// Written by hand rather than with `JSONEncoder(.sortedKeys)`: the recorder
    /// serializes every call's context and parameters, and this is several times
    /// faster for the same output (RFC 8259 escaping, UTF-8 kept as is).
    public var canonicalText: String {
        String(decoding: canonicalBytes, as: UTF8.self)
    }

    /// `canonicalText` as UTF-8 bytes, without making a String of them (large API answers).
    public var canonicalBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out)
        return out
    }

    func write(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .double(let d):
            if d.isFinite {
                out.append(contentsOf: (d.rounded() == d && abs(d) < 1e15 ? String(Int64(d)) + ".0" : String(d)).utf8)
            } else {
                out.append(contentsOf: "null".utf8)
            }
        case .string(let s): Self.writeString(s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (n, item) in items.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                item.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            // Keys in UTF-8 byte order (the order of String's `<` for the NFC text JSON keys
            // are in, without its Unicode-aware comparison), each value taken with its key.
            let sorted = members.count < 2
                ? Array(members) : members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            for (n, member) in sorted.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(member.key, into: &out)
                out.append(UInt8(ascii: ":"))
                member.value.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { bytes in
            // Copy runs of plain bytes at once; escape the few that need it.
            var runStart = 0
            while true {
                let i = ByteSearch.stringRunEnd(UnsafeRawBufferPointer(bytes), from: runStart)
                guard i < bytes.count else { break }
                let byte = bytes[i]
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i]))
                runStart = i + 1
                switch byte {
                case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                    out.append(hex[Int(byte >> 4)])
                    out.append(hex[Int(byte & 0xF)])
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Plain text of a message `content`: a string as is, a multi-part array
    /// as its text parts joined by newlines (images and audio are left out).
    public var plainText: String? {
        switch self {
        case .string(let s):
            return s
        case .array(let parts):
            let texts = parts.compactMap { part -> String? in
                if let s = part.stringValue { return s }
                return part["text"]?.stringValue
            }
            return texts.isEmpty ? nil : texts.joined(separator: "\n")
        default:
            return nil
        }
    }
}

extension JSONValue {
    /// Whether two values are the same down to their bytes: every string and key the same
    /// UTF-8, every number the same value and kind. Then everything written from them
    /// (`canonicalBytes`, `Conversation.normalizedCanonicalBytes`) is the same, so a hash of
    /// one serves the other. Not `==`: Swift compares strings by canonical equivalence, so
    /// "é" precomposed equals "e" + U+0301 while their bytes, and hashes, differ.
    public func isIdentical(to other: JSONValue) -> Bool {
        switch (self, other) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.double(let a), .double(let b)): return a.bitPattern == b.bitPattern
        case (.string(let a), .string(let b)): return Self.sameBytes(a, b)
        case (.array(let a), .array(let b)):
            guard a.count == b.count else { return false }
            for index in a.indices where !a[index].isIdentical(to: b[index]) { return false }
            return true
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            for (key, value) in a {
                // Looked up by `==`: the key found must also be the same bytes.
                guard let found = b.index(forKey: key), Self.sameBytes(b[found].key, key),
                    value.isIdentical(to: b[found].value)
                else { return false }
            }
            return true
        default: return false
        }
    }

    /// The same UTF-8 bytes: compared as memory for native strings.
    static func sameBytes(_ a: String, _ b: String) -> Bool {
        let (a, b) = (a.utf8, b.utf8)
        guard a.count == b.count else { return false }
        let compared = a.withContiguousStorageIfAvailable { x in
            b.withContiguousStorageIfAvailable { y in ByteSearch.same(UnsafeRawBufferPointer(x), UnsafeRawBufferPointer(y)) }
        }
        return (compared ?? nil) ?? a.elementsEqual(b)
    }
}
