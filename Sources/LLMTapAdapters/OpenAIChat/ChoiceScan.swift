import LLMTapCore

extension OpenAIChat {
    /// Reading a choice with `JSONScanner` — the members the record needs, the rest stepped
    /// over — for the common stream chunk (`StreamAccumulator`) and the common completion
    /// (`parseResponse`). Anything the scan does not read the way the full parse does (a key
    /// repeated, tool calls) makes it return nil or false: the caller then takes the full parse.
    enum ChoiceScan {
        /// One choice of a chunk (or of a completion) as the scan reads it.
        struct Choice {
            var index: Int
            /// `delta`'s pieces, and `message`'s (read when a chunk has no `delta`).
            var delta: Pieces?
            var message: Pieces?
            var text: String?
            var finishReason: String?
        }

        /// The keys of an object met so far, by number: a repeated one takes the full parse
        /// (where the last one counts).
        struct Seen {
            private var bits: UInt8 = 0

            mutating func first(_ key: Int) -> Bool {
                defer { bits |= 1 << key }
                return bits & (1 << key) == 0
            }
        }

        struct Pieces {
            var content: String?
            /// `content` was an array of parts, which a stream's text leaves out and a completion's
            /// output joins (`JSONValue.plainText`): the completion takes the full parse.
            var contentParts = false
            /// A non-empty `reasoning_content`, `reasoning` or `refusal`: the chunk carries content.
            var other = false
        }

        static func choice(_ scanner: inout JSONScanner, position: Int) -> Choice? {
            var choice = Choice(index: position)
            var seen = Seen()
            let read = scanner.members { key, scanner in
                switch key {
                case "index": guard seen.first(0) else { return false }
                case "delta": guard seen.first(1) else { return false }
                case "message": guard seen.first(2) else { return false }
                case "text": guard seen.first(3) else { return false }
                case "finish_reason": guard seen.first(4) else { return false }
                default:
                    scanner.skip()
                    return true
                }
                switch key {
                case "index":
                    choice.index = (scanner.value()?.intValue).map { Int($0) } ?? position
                case "delta", "message":
                    // A `delta` of null or of another kind has no pieces, and hides `message`.
                    var pieces = Pieces()
                    if scanner.isNull || !scanner.isObject {
                        scanner.skip()
                    } else if !Self.pieces(&scanner, into: &pieces) {
                        return false
                    }
                    if key == "delta" { choice.delta = pieces } else { choice.message = pieces }
                case "text":
                    choice.text = scanner.stringValue()
                default:
                    choice.finishReason = scanner.stringValue()
                }
                return true
            }
            return read ? choice : nil
        }

        static func pieces(_ scanner: inout JSONScanner, into pieces: inout Pieces) -> Bool {
            var seen = Seen()
            return scanner.members { key, scanner in
                switch key {
                case "content", "reasoning_content", "reasoning", "refusal":
                    let bit = key == "content" ? 0 : key == "reasoning_content" ? 1 : key == "reasoning" ? 2 : 3
                    guard seen.first(bit) else { return false }
                    if key == "content", scanner.isArray { pieces.contentParts = true }
                    let piece = scanner.stringValue()
                    if key == "content" {
                        pieces.content = piece
                    } else if let piece, !piece.isEmpty {
                        pieces.other = true
                    }
                    return true
                case "tool_calls":
                    // Tool-call fragments take the full parse; anything but an array adds none.
                    guard !scanner.isArray else { return false }
                    scanner.skip()
                    return true
                default:
                    scanner.skip()
                    return true
                }
            }
        }
    }
}
