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

    /// export → import into a new database → export gives the same bytes, for calls of every
    /// kind (threaded and explicit sessions, streams, a failure, Anthropic, Ollama, gzip, no-log).
    @Test func backupRoundTripLosesNothing() async throws {
        let store = try await Tap.run { tap in
            try await tap.makeHistory()
            _ = await Tap.read(try await tap.post("/anthropic/v1/messages", body: WireSamples.anthropicRequest(stream: true)))
            _ = await Tap.read(try await tap.post("/api/chat", body: WireSamples.ollamaChatRequest(stream: nil)))
            _ = await Tap.read(try await tap.post(body: WireSamples.request(model: "gzip", stream: false)))
            _ = await Tap.read(try await tap.post(body: WireSamples.request(stream: false), headers: [("X-Tap-No-Log", "1")]))
        }
        func export(_ store: Store) throws -> (backup: [String], jsonl: [String]) {
            var backup: [String] = []
            var jsonl: [String] = []
            try store.forEachCall(filter: CallFilter(), payloads: true) { call in
                backup.append(try CallExport.backupLine(call))
                jsonl.append(CallExport.jsonLine(call))
            }
            return (backup, jsonl)
        }
        let first = try export(store)
        #expect(first.backup.count == 9)
        let directory = try TestFiles.directory()
        let restored = try Store(path: directory.appendingPathComponent("restored.sqlite").path)
        let records = try first.backup.map { try CallExport.record(backupLine: Array($0.utf8)) }
        try await restored.insert(records)
        try await restored.insert(records)  // importing twice adds nothing
        let second = try export(restored)
        #expect(second.backup == first.backup)
        #expect(second.jsonl == first.jsonl)
        for record in records { #expect(try restored.call(id: record.id) == store.call(id: record.id)) }
        #expect(try restored.cost(groupBy: .model, filter: CallFilter()) == store.cost(groupBy: .model, filter: CallFilter()))
        #expect(throws: CallExport.BackupError.self) { try CallExport.record(backupLine: Array(#"{"id":"x"}"#.utf8)) }
    }

    @Test func badRetentionIsRefusedAtStart() throws {
        var configuration = LLMTapConfiguration()
        configuration.retain = "forever"
        configuration.databasePath = TestFiles.path(extension: "sqlite")
        #expect(throws: ConfigurationError.self) { try buildApplication(configuration) }
    }
}
