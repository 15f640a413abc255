import Foundation
import LLMTapCore
import LLMTapStore
import LLMTapTestSupport
import Logging

/// A fresh directory for one test's database, spool and key files.
struct TestDirectory {
    let url: URL

    init() throws {
        url = try TestFiles.directory()
    }

    var databasePath: String { url.appendingPathComponent("llmtap.sqlite").path }
    var spoolPath: String { databasePath + ".spool" }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

func sampleRecord(_ n: Int, payload: String = "{\"model\":\"gpt-4o-mini\"}") -> CallRecord {
    var record = CallRecord(
        createdAt: 1_733_000_000 + Double(n), provider: "openai", endpoint: "/v1/chat/completions",
        apiFormat: "openai.chat", latencyS: 0.25)
    record.model = "gpt-4o-mini"
    record.usage = Usage(inputTokens: 10, outputTokens: Int64(n))
    record.costNanoUSD = 1500 + Int64(n)
    record.output = "answer \(n)"
    record.tags = ["team": "search"]
    record.requestBody = Array(payload.utf8)
    record.responseBody = Array("data: {\"n\":\(n)}\n\ndata: [DONE]\n\n".utf8)
    return record
}

let testLogger = Logger(label: "llmtap-test")

extension Store {
    /// The ids of the calls a text search (`q`) finds, newest first.
    func found(_ text: String, limit: Int = 10) throws -> [String] {
        var filter = CallFilter()
        filter.text = text
        return try requests(filter: filter, limit: limit, cursor: nil).items.map(\.id)
    }
}
