import Foundation
import LLMTapCore
import Testing

struct JSONValueTests {
    @Test func canonicalTextIsSortedCompactAndRoundTrips() throws {
        let text = #"{"b":[1,2.5,true,null],"a":"line\n\"quoted\" \\ é/ \u0001","c":{"z":1.0,"y":-3}}"#
        let value = try #require(JSONValue.parse(Array(text.utf8)))
        let canonical = value.canonicalText
        #expect(canonical == #"{"a":"line\n\"quoted\" \\ é/ \u0001","b":[1,2.5,true,null],"c":{"y":-3,"z":1.0}}"#)  // 1.0 stays a double
        #expect(JSONValue.parse(Array(canonical.utf8)) == value)
    }

    /// Identical means the same bytes everywhere: what `==` calls equal may differ in its bytes.
    @Test func identicalValuesAreTheSameDownToTheirBytes() throws {
        let text = #"{"role":"user","content":[{"type":"text","text":"café"},{"n":1,"x":2.5,"b":true,"z":null}]}"#
        let a = try #require(JSONValue.parse(Array(text.utf8)))
        let b = try #require(JSONValue.parse(Array(text.utf8)))
        #expect(a.isIdentical(to: b) && b.isIdentical(to: a))
        let long = String(repeating: "words of a long context ", count: 400)
        #expect(JSONValue.string(long).isIdentical(to: .string(String(decoding: Array(long.utf8), as: UTF8.self))))
        #expect(!JSONValue.string(long).isIdentical(to: .string(long.dropLast() + "!")))

        let precomposed = JSONValue.string("caf\u{E9}")
        let decomposed = JSONValue.string("cafe\u{301}")
        #expect(precomposed == decomposed)  // canonically equivalent, so Swift calls them equal
        #expect(!precomposed.isIdentical(to: decomposed))
        #expect(precomposed.canonicalBytes != decomposed.canonicalBytes)
        let keyed: (String) -> JSONValue = { .object([$0: .int(1)]) }
        #expect(keyed("caf\u{E9}") == keyed("cafe\u{301}"))
        #expect(!keyed("caf\u{E9}").isIdentical(to: keyed("cafe\u{301}")))

        for (x, y): (JSONValue, JSONValue) in [
            (.int(1), .double(1)), (.double(0), .double(-0.0)), (.array([.int(1)]), .array([.int(1), .int(1)])),
            (.object(["a": .null]), .object(["a": .null, "b": .null])), (.object(["a": .null]), .object(["b": .null])),
            (.array([.string("x")]), .array([.string("y")])), (.bool(true), .bool(false)), (.null, .string("")),
        ] {
            #expect(!x.isIdentical(to: y) && !y.isIdentical(to: x), "\(x) vs \(y)")
            #expect(x.isIdentical(to: x))
        }
    }
}

struct JSONParserTests {
    @Test(arguments: [
        #"{"a":[1,-2,3.5,-0.25E-2,true,false,null],"b":{"c":"d"}}"#,
        #"  {"esc":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}  "#,
        #"[]"#, #"{}"#, #""just a string""#, "42", #"{"big":12345678901234567890}"#,
        // Siblings after nested objects and arrays close: each level keeps its own members.
        #"{"a":{"b":[1,{"c":2,"d":[3,4]},5],"e":{}},"f":[[],[6,[7,{"g":[]}]],8],"h":{"i":{"j":{"k":9}},"l":10},"m":11}"#,
    ])
    func agreesWithFoundation(_ text: String) throws {
        let ours = try #require(JSONValue.parse(Array(text.utf8)))
        let foundation = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(ours == foundation || ours.canonicalText == foundation.canonicalText)
    }

    @Test func aRepeatedKeyKeepsItsLastValue() throws {
        let value = try #require(JSONValue.parse(Array(#"{"k":1,"o":{"k":2,"k":[3]},"k":{"x":4}}"#.utf8)))
        #expect(value.canonicalText == #"{"k":{"x":4},"o":{"k":[3]}}"#)
    }

    /// Found by the fuzzer: `4e444` parsed as infinity, which has no JSON text to write back.
    @Test func numbersBeyondADoubleAreNotJSON() {
        #expect(JSONValue.parse(Array("4e444".utf8)) == nil)
        #expect(JSONValue.parse(Array(#"{"a":-1e400}"#.utf8)) == nil)
        #expect(JSONValue.parse(Array("1e308".utf8)) == .double(1e308))
    }

    @Test func numbersKeepTheirKind() {
        #expect(JSONValue.parse(Array("1e3".utf8)) == .double(1000))
        #expect(JSONValue.parse(Array("1.0".utf8)) == .double(1))
        #expect(JSONValue.parse(Array("-7".utf8)) == .int(-7))
    }

    @Test(arguments: [
        #"{"a":1"#, #"{"a" 1}"#, #"[1,]"#, #"{"a":01}"#, #"tru"#, #""unterminated"#, "{\"ctl\":\"\u{01}\"}",
        #"[1] x"#, "", #"{"a":"\ud83d"}"#, String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
    ])
    func rejectsMalformedJSON(_ text: String) {
        #expect(JSONValue.parse(Array(text.utf8)) == nil)
    }
}

struct JSONScannerTests {
    /// A number the scanner steps over is refused exactly when the parser refuses it: out of a
    /// double's range (`1e400`, a 400-digit integer with an exponent), malformed (`01`, `1.`,
    /// `-`, `1e`, `.5`, `+1`), or fine (`-0`, a 300-digit integer, `1e308`, `12.5E-3`).
    @Test func aSkippedNumberIsRefusedExactlyWhenTheParserRefusesIt() {
        let digits = String(repeating: "9", count: 300)
        let numbers = [
            "0", "-0", "7", "-12", "01", "-01", "1.", "1.5", "-0.25", ".5", "+1", "-", "1e", "1e+", "1E5", "12.5E-3",
            "1e308", "1e309", "-1e400", "4e444", "1e-400", digits, digits + "9", digits + ".5", "1" + digits + "e0",
            String(repeating: "9", count: 400), String(repeating: "9", count: 400) + "e2", "9223372036854775808", "1.5e",
            "0x10", "1,", "2 ",
        ]
        for number in numbers {
            let document = #"{"skipped":"# + number + #","kept":"yes"}"#
            let parsed = JSONValue.parse(Array(document.utf8))
            var kept: String?
            let scanned = Array(document.utf8).withUnsafeBufferPointer { bytes -> Bool in
                var scanner = JSONScanner(bytes)
                let read = scanner.members { key, scanner in
                    if key == "kept" { kept = scanner.stringValue() } else { scanner.skip() }
                    return true
                }
                return read && scanner.finished()
            }
            #expect(scanned == (parsed != nil), "\(number)")
            if scanned { #expect(kept == "yes", "\(number)") }
        }
    }
}
