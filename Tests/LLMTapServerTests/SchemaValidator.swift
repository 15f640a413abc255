import LLMTapCore

/// Checks a JSON value against the subset of JSON Schema (2020-12, as OpenAPI 3.1 uses it)
/// that llmtap's OpenAPI document is written in: `$ref` to `#/components/schemas/…`,
/// `type` (one or a list), `properties`, `required`, `items`, `enum`. Test code: a
/// dependency for full JSON Schema would be more than these five keywords need.
struct SchemaValidator {
    let document: JSONValue

    /// Every mismatch, as a JSON path and what was expected; empty when `value` conforms.
    func problems(_ value: JSONValue, _ schema: JSONValue, at path: String = "$") -> [String] {
        if let reference = schema["$ref"]?.stringValue {
            let name = reference.split(separator: "/").last.map(String.init) ?? ""
            guard let target = document["components"]?["schemas"]?[name] else { return ["\(path): unknown \(reference)"] }
            return problems(value, target, at: path)
        }
        var found: [String] = []
        if let types = schema["type"].map({ $0.arrayValue?.compactMap(\.stringValue) ?? [$0.stringValue ?? ""] }),
            !types.contains(where: { Self.matches(value, type: $0) })
        {
            return ["\(path): expected \(types.joined(separator: " or ")), got \(value.canonicalText.prefix(60))"]
        }
        if let allowed = schema["enum"]?.arrayValue, !allowed.contains(value) {
            found.append("\(path): \(value.canonicalText) is not one of \(JSONValue.array(allowed).canonicalText)")
        }
        if let members = value.objectValue {
            for name in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where members[name] == nil {
                found.append("\(path): missing required \(name)")
            }
            for (name, property) in schema["properties"]?.objectValue ?? [:] {
                if let member = members[name] { found += problems(member, property, at: "\(path).\(name)") }
            }
        }
        if let items = value.arrayValue, let itemSchema = schema["items"] {
            for (index, item) in items.enumerated() { found += problems(item, itemSchema, at: "\(path)[\(index)]") }
        }
        return found
    }

    static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object),
            ("integer", .int), ("number", .int), ("number", .double):
            return true
        case ("integer", .double(let d)):
            return d.rounded() == d
        default:
            return false
        }
    }
}
