import LLMTapCore
import NIOCore

/// What the proxy must know of a request body before the call goes upstream — its top-level
/// `model` (aliases), `stream` and `stream_options` (usage injection) — read by scanning the
/// object's top level and parsing only those members' values. The rest, the conversation,
/// which grows with every turn, is parsed later, off the event loop, when the call's record is
/// built (`WireAPI.parseRequest`): parsing it whole was a tenth of a request's time on the
/// loop with a 1 KB body, and grows with the body.
public struct RequestSummary: Sendable, Equatable {
    /// The top-level `model`, when it is a string.
    public var model: String?
    public var isStream = false
    /// `stream_options` is present, whatever its value (the client's choice, which usage
    /// injection respects).
    public var hasStreamOptions = false
    public var includesUsage = false
    /// The body is one JSON object: its strings end, its brackets balance, its members are
    /// `"key": value` pairs and nothing follows it. (Not a full validation: a bad number deep
    /// in the conversation passes; the members read above are parsed in full.)
    public var isObject = false

    public init(_ body: ByteBuffer) {
        self.init(Array(body.readableBytesView))
    }

    public init(_ bytes: [UInt8]) {
        guard let members = TopLevelMember.members(of: bytes[...]) else { return }
        isObject = true
        // A repeated key: the last one counts, as in `JSONValue.parse`.
        for member in members {
            let key =
                member.key.contains(UInt8(ascii: "\\"))  // escaped: decoded, as the parser does
                ? JSONValue.parse(bytes[(member.key.startIndex - 1)..<(member.key.endIndex + 1)])?.stringValue
                : String(decoding: member.key, as: UTF8.self)
            switch key {
            case "model":
                model = JSONValue.parse(bytes[member.value])?.stringValue
            case "stream":
                isStream = JSONValue.parse(bytes[member.value])?.boolValue ?? false
            case "stream_options":
                hasStreamOptions = true
                includesUsage = JSONValue.parse(bytes[member.value])?["include_usage"]?.boolValue ?? false
            default:
                break
            }
        }
    }
}
