import Foundation
import GRDB
import LLMTapCore
@testable import LLMTapStore
import Testing

/// `q`: every word must occur; the index keeps terms, not their positions, so a word that
/// punctuation cuts is searched as its parts.
struct SearchTests {
    @Test func everyWordMustMatchAndPunctuationCutsWords() async throws {
        let directory = try TestDirectory()
        defer { directory.remove() }
        let store = try Store(path: directory.databasePath)
        var calls = (1...4).map { sampleRecord($0) }
        calls[0].output = "We hit the rate-limit again."
        calls[1].output = "The limit of the rate card."
        calls[2].output = "Un café naïve à 東京, ok?"
        calls[3].output = "Nothing here."
        try await store.insert(calls)
        func found(_ text: String) throws -> Set<String> { Set(try store.found(text)) }
        #expect(try found("rate-limit") == [calls[0].id, calls[1].id])  // both parts, in any order
        #expect(try found("RATE limit again.") == [calls[0].id])
        #expect(try found("\"again\"") == [calls[0].id])  // quotes are punctuation, never FTS syntax
        #expect(try found("cafe NAIVE") == [calls[2].id])  // case and diacritics folded like the index
        #expect(try found("東京") == [calls[2].id])
        #expect(try found("again OR nothing").isEmpty)  // OR is a word here, not an operator
        #expect(try found("(x) AND NEAR*").isEmpty)
        #expect(try found(" — … ").count == 4)  // no word at all: no filter
        // A letter newer than the index's Unicode tables (Adlam, Unicode 9) separates words there too.
        #expect(try found("rate\u{1E900}limit") == [calls[0].id, calls[1].id])
        #expect(CallFilter.ftsQuery("it's a rate-limit") == #""it" "s" "a" "rate" "limit""#)
    }
}
