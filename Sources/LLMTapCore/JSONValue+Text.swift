import Foundation

extension JSONValue {
    /// Parses a JSON document; `nil` when the bytes are not JSON.
    public static func parse<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    /// Compact JSON text with sorted keys, so equal values give equal text
    /// (the form stored in the database and hashed for threading).
    public var canonicalText: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self) else { return "null" }
        return String(decoding: data, as: UTF8.self)
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
