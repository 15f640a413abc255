import LLMTapCore
import NIOCore

/// Model aliases (the `auto` model of an OpenAI-compatible proxy): the one documented,
/// opt-in exception to transparency besides the usage option. Only the top-level
/// `"model"` string is replaced; every other byte of the body is kept.
public enum ModelAlias {
    /// The body with its top-level `model` set to `target`, or nil when it has no string `model`.
    /// A body that repeats `model` has every one replaced: JSON readers differ on which counts.
    public static func rewrite(_ body: ByteBuffer, to target: String) -> ByteBuffer? {
        let bytes = Array(body.readableBytesView)
        guard let ranges = TopLevelMember.ranges(of: "model", stringValuedIn: bytes[...]) else { return nil }
        let replacement = JSONValue.string(target).canonicalText
        var out = ByteBuffer()
        out.reserveCapacity(bytes.count + ranges.count * replacement.utf8.count)
        var copied = 0
        for range in ranges {
            out.writeBytes(bytes[copied..<range.lowerBound])
            out.writeString(replacement)
            copied = range.upperBound
        }
        out.writeBytes(bytes[copied...])
        return out
    }
}
