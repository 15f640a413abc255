import LLMTapCore
import Testing

struct ByteSearchTests {
    static func naiveStringRunEnd(_ bytes: [UInt8], from start: Int) -> Int {
        var i = start
        while i < bytes.count, bytes[i] != UInt8(ascii: "\""), bytes[i] != UInt8(ascii: "\\"), bytes[i] >= 0x20 { i += 1 }
        return min(i, bytes.count)
    }

    static func naiveLineEnd(_ bytes: [UInt8], from start: Int) -> Int {
        var i = start
        while i < bytes.count, bytes[i] != 0x0A, bytes[i] != 0x0D { i += 1 }
        return min(i, bytes.count)
    }

    /// Past the closing quote, stepping over escapes, byte by byte.
    static func naiveStringEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        var i = start
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\"") { return i + 1 }
            i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1
        }
        return nil
    }

    /// Every position and length up to three words, with the byte sought at each place of a word
    /// among bytes that sit next to it in value (0x21 and 0x5B/0x5D beside `"` and `\`, 0x1F
    /// and 0x20 at the control boundary, 0x0B/0x0C between `\n` and `\r`, bytes at and above 0x80
    /// whose subtraction borrows): each search must stop exactly where the byte-by-byte one does.
    @Test func findsWhatTheByteByByteSearchFinds() {
        let filler: [UInt8] = [0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7F, 0x80, 0x9F, 0xA0, 0xFF, 0x0B, 0x0C, 0x61]
        let sought: [UInt8] = [0x22, 0x5C, 0x00, 0x1F, 0x09, 0x0A, 0x0D, 0x01]
        var checked = 0
        for length in 0...24 {
            for fill in filler {
                for target in sought {
                    for position in -1..<length {
                        var bytes = [UInt8](repeating: fill, count: length)
                        if position >= 0 { bytes[position] = target }
                        // A second one later: only the first counts.
                        if position >= 0, position + 3 < length { bytes[position + 3] = UInt8(ascii: "\"") }
                        for start in [0, 1, 7, 8, 9].filter({ $0 <= length }) {
                            let run = bytes.withUnsafeBytes { ByteSearch.stringRunEnd($0, from: start) }
                            let line = bytes.withUnsafeBytes { ByteSearch.lineEnd($0, from: start) }
                            #expect(run == Self.naiveStringRunEnd(bytes, from: start), "\(bytes) from \(start)")
                            #expect(line == Self.naiveLineEnd(bytes, from: start), "\(bytes) from \(start)")
                            checked += 1
                        }
                    }
                }
            }
        }
        #expect(checked > 100_000)
    }

    @Test func randomBuffers() {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = [0x22, 0x5C, 0x0A, 0x0D, 0x1F, 0x20, 0x41, 0x80, 0xC3, 0xFF]
        for _ in 0..<2_000 {
            let length = Int.random(in: 0...100, using: &generator)
            // Mostly plain bytes, so runs are long enough to cross several words.
            let bytes = (0..<length).map { _ in
                Int.random(in: 0..<40, using: &generator) == 0
                    ? alphabet.randomElement(using: &generator)! : UInt8.random(in: 0x23...0x5B, using: &generator)
            }
            let start = Int.random(in: 0...length, using: &generator)
            #expect(bytes.withUnsafeBytes { ByteSearch.stringRunEnd($0, from: start) } == Self.naiveStringRunEnd(bytes, from: start))
            #expect(bytes.withUnsafeBytes { ByteSearch.lineEnd($0, from: start) } == Self.naiveLineEnd(bytes, from: start))
            #expect(bytes.withUnsafeBytes { ByteSearch.stringEnd($0, from: start) } == Self.naiveStringEnd(bytes, from: start))
        }
    }

    @Test func theEndOfAString() {
        func end(_ text: String) -> Int? { Array(text.utf8).withUnsafeBytes { ByteSearch.stringEnd($0, from: 0) } }
        #expect(end(#"plain text that runs past a word" rest"#) == 33)
        #expect(end(#"an \"escaped\" quote and \\" rest"#) == 28)
        #expect(end("a control \u{01} byte\" x") == 17)
        #expect(end(#"unterminated"#) == nil)
        #expect(end(#"ends in a backslash \"#) == nil)
        #expect(end(#"\""#) == nil)
    }

    @Test func emptyAndPastTheEnd() {
        let empty: [UInt8] = []
        #expect(empty.withUnsafeBytes { ByteSearch.stringRunEnd($0, from: 0) } == 0)
        let text = Array("abc".utf8)
        #expect(text.withUnsafeBytes { ByteSearch.lineEnd($0, from: 3) } == 3)
        #expect(text.withUnsafeBytes { ByteSearch.stringRunEnd($0, from: 5) } == 3)
    }
}
