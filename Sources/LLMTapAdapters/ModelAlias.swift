import LLMTapCore
import NIOCore

/// Model aliases (the `auto` model of an OpenAI-compatible proxy): the one documented,
/// opt-in exception to transparency besides the usage option. Only the top-level
/// `"model"` string is replaced; every other byte of the body is kept.
public enum ModelAlias {
    /// The body with its top-level `model` set to `target`, or nil when it has no string `model`.
    public static func rewrite(_ body: ByteBuffer, to target: String) -> ByteBuffer? {
        let bytes = Array(body.readableBytesView)
        guard let range = TopLevelMember.range(of: "model", stringValuedIn: bytes[...]) else { return nil }
        var out = ByteBuffer()
        out.reserveCapacity(bytes.count + target.utf8.count)
        out.writeBytes(bytes[..<range.lowerBound])
        out.writeString(JSONValue.string(target).canonicalText)
        out.writeBytes(bytes[range.upperBound...])
        return out
    }
}
