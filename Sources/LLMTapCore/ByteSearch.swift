import Foundation

/// Finding the next byte of interest eight bytes at a time: the end of a JSON string's plain
/// run (its closing quote, an escape, a control character) and the end of an SSE line.
///
/// Every scanner llmtap runs over recorded bytes spends most of its steps inside strings —
/// a chat message's content, a stream chunk's text — looking for the one byte that ends the
/// run, and did it a byte at a time: the canonical writer's escape scan, the payload-fragment
/// scanner, the stream chunk scanner and the SSE line search were each 1 – 4 % of the
/// recorder's CPU. Here each word of eight bytes is tested at once (the "has a zero byte"
/// test of Hacker's Delight §6-1 / Anderson's bit-twiddling hacks: `(x - 0x01…) & ~x & 0x80…`
/// flags the first byte of `x` that is zero exactly, any flag above it may be a borrow's echo,
/// so only the lowest flag is read). The standard library has no such search over a buffer
/// for a set of bytes, and `memchr` finds only one.
public enum ByteSearch {
    /// Whether two buffers hold the same bytes, compared as memory (a context's text, kilobytes).
    public static func same(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        a.count == b.count && (a.isEmpty || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0)
    }

    @usableFromInline static let ones: UInt64 = 0x0101_0101_0101_0101
    @usableFromInline static let highs: UInt64 = 0x8080_8080_8080_8080

    /// The high bit of each byte of `word` equal to `byte` (exact for the lowest one only).
    @inlinable @inline(__always)
    static func equal(_ word: UInt64, _ byte: UInt8) -> UInt64 {
        let x = word ^ (ones &* UInt64(byte))
        return (x &- ones) & ~x & highs
    }

    /// The high bit of each byte of `word` below 0x20 (exact for the lowest one only).
    @inlinable @inline(__always)
    static func control(_ word: UInt64) -> UInt64 {
        (word &- ones &* 0x20) & ~word & highs
    }

    /// The first index from `start` whose byte is `"`, `\` or below 0x20 — where a JSON
    /// string's run of bytes that stand for themselves ends — or `bytes.count` if none.
    @inlinable
    public static func stringRunEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        firstIndex(
            bytes, from: start,
            flags: { equal($0, UInt8(ascii: "\"")) | equal($0, UInt8(ascii: "\\")) | control($0) },
            matches: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 < 0x20 })
    }

    /// The index just past the closing quote of a string whose content starts at `start` (after
    /// its opening quote), stepping over escapes without checking them; nil when it is not
    /// closed. For scanners that only find where values end (payload fragments, a chunk's
    /// members); `JSONParser` checks what it reads.
    @inlinable
    public static func stringEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var i = start
        while true {
            i = stringRunEnd(bytes, from: i)
            guard i < bytes.count else { return nil }
            switch bytes[i] {
            case UInt8(ascii: "\""): return i + 1
            case UInt8(ascii: "\\"): i += 2
            default: i += 1  // a control character
            }
        }
    }

    /// The first index from `start` whose byte is `\n` or `\r` — where a line ends — or
    /// `bytes.count` if none.
    @inlinable
    public static func lineEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        firstIndex(
            bytes, from: start, flags: { equal($0, 0x0A) | equal($0, 0x0D) }, matches: { $0 == 0x0A || $0 == 0x0D })
    }

    /// The first index from `start` whose byte `matches`: a word at a time while eight bytes
    /// are left (`flags` marks the bytes sought in a word), then byte by byte.
    @inlinable @inline(__always)
    static func firstIndex(
        _ bytes: UnsafeRawBufferPointer, from start: Int, flags: (UInt64) -> UInt64, matches: (UInt8) -> Bool
    ) -> Int {
        var i = start
        if let base = bytes.baseAddress {
            while i + 8 <= bytes.count {
                let found = flags(UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
                if found != 0 { return i + found.trailingZeroBitCount >> 3 }
                i += 8
            }
        }
        while i < bytes.count {
            if matches(bytes[i]) { return i }
            i += 1
        }
        return bytes.count
    }
}
