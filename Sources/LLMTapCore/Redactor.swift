import Foundation

/// Blanks out secrets and personal data before a call is stored (`--redact`): in the
/// context, input, output, tool calls, parameters and error text, and in the raw request
/// and response bytes. Off unless configured. Each match becomes `[REDACTED:<name>]`,
/// which has no quote or backslash, so JSON bodies stay valid JSON.
///
/// Built-ins: `api-keys` (OpenAI/Anthropic `sk-…`, AWS `AKIA…`, GitHub `ghp_…`/`github_pat_…`,
/// Google `AIza…`, Slack `xox?-…`, and `Bearer <token>` as a whole), `emails`. Anything else is
/// `regex:PATTERN` (Swift `Regex` syntax), named `custom`.
public struct Redactor: Sendable {
    struct Rule: @unchecked Sendable {  // Regex is immutable once built; it is not marked Sendable
        let name: String
        let regex: Regex<AnyRegexOutput>
        /// A fast check before the regex runs: skip text that cannot match.
        let mustContain: [String]
    }

    let rules: [Rule]

    public static let builtIns: [String: (pattern: String, mustContain: [String])] = [
        "api-keys": (
            #"(?:sk-(?:ant-|proj-|svcacct-)?[A-Za-z0-9_\-]{16,}|AKIA[0-9A-Z]{16}|ghp_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{40,}|AIza[0-9A-Za-z_\-]{35}|xox[abprs]-[A-Za-z0-9\-]{10,}|Bearer [A-Za-z0-9._~+/\-]{20,}=*)"#,
            ["sk-", "AKIA", "ghp_", "github_pat_", "AIza", "xox", "Bearer "]
        ),
        "emails": (#"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"#, ["@"]),
    ]

    /// - Parameter specs: `api-keys`, `emails` or `regex:PATTERN`; throws on anything else or a bad pattern.
    public init(_ specs: [String]) throws {
        rules = try specs.map { spec in
            if let builtIn = Self.builtIns[spec] {
                return Rule(name: spec, regex: try Regex(builtIn.pattern), mustContain: builtIn.mustContain)
            }
            guard spec.hasPrefix("regex:"), spec.count > 6 else {
                throw RedactorError("redact takes api-keys, emails or regex:PATTERN, not '\(spec)'")
            }
            do {
                return Rule(name: "custom", regex: try Regex(String(spec.dropFirst(6))), mustContain: [])
            } catch {
                throw RedactorError("redact pattern '\(spec.dropFirst(6))' is not a valid regex: \(error)")
            }
        }
    }

    public var isEmpty: Bool { rules.isEmpty }

    /// The text with every match replaced.
    public func redact(_ text: String) -> String {
        var text = text
        for rule in rules where rule.mustContain.isEmpty || rule.mustContain.contains(where: text.contains) {
            text = text.replacing(rule.regex, with: "[REDACTED:\(rule.name)]")
        }
        return text
    }

    /// UTF-8 bytes with every match replaced; bytes that are not UTF-8 text come back unchanged.
    public func redact(bytes: [UInt8]) -> [UInt8] {
        guard !bytes.isEmpty, let text = String(validating: bytes, as: UTF8.self) else { return bytes }
        let redacted = redact(text)
        return redacted == text ? bytes : Array(redacted.utf8)
    }

    /// Every string in the value (keys kept).
    public func redact(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let text): return .string(redact(text))
        case .array(let items): return .array(items.map(redact))
        case .object(let members): return .object(members.mapValues(redact))
        default: return value
        }
    }
}

public struct RedactorError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
