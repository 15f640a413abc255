import Foundation
import LLMTapCore
import LLMTapServer
import LLMTapStore
import LLMTapTestSupport
import Testing

struct ExportTests {
    @Test func jsonlAndCSVOfRealCalls() async throws {
        let store = try await Tap.run { tap in
            _ = await Tap.read(try await tap.post(body: WireSamples.request(stream: true)))
            let awkward = #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"a, \"quoted\"\nline"}]}"#
            _ = await Tap.read(try await tap.post(body: awkward))
        }
        var lines: [String] = []
        var rows: [String] = []
        try store.forEachCall(filter: CallFilter(), pageSize: 1) { call in
            lines.append(CallExport.jsonLine(call))
            rows.append(CallExport.csvRow(call))
        }
        #expect(lines.count == 2 && rows.count == 2)
        let first = try #require(JSONValue.parse(Array(lines[0].utf8)))
        #expect(first["chat_output"] == .string("Hello there!"))
        #expect(first["context"]?.arrayValue?.count == 2)
        #expect(CallExport.csvHeader.split(separator: ",").count == CallExport.csvColumns.count)
        #expect(rows[1].contains(#""a, ""quoted""\#nline""#))  // RFC 4180: quoted, quotes doubled, newline kept
    }

    @Test func badRetentionIsRefusedAtStart() throws {
        var configuration = LLMTapConfiguration()
        configuration.retain = "forever"
        configuration.databasePath = FileManager.default.temporaryDirectory.appendingPathComponent("llmtap-\(UUID().uuidString).sqlite").path
        #expect(throws: ConfigurationError.self) { try buildApplication(configuration) }
    }
}
