import ArgumentParser
import Foundation
import LLMTapCore
import LLMTapServer
import LLMTapStore

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write calls as JSONL or CSV to standard output (a progress line on a terminal).")
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var filters: FilterOptions
    @Option(help: "jsonl or csv.") var format = "jsonl"
    @Option(help: "Only this session.") var session: String?

    func run() throws {
        guard format == "jsonl" || format == "csv" else { throw ValidationError("--format is jsonl or csv") }
        let store = try database.open()
        var filter = try filters.filter()
        filter.sessionID = session
        let total = try store.count(filter: filter)
        let showProgress = isatty(STDERR_FILENO) == 1
        let out = FileHandle.standardOutput
        var buffer = Data()
        if format == "csv" { buffer.append(Data((CallExport.csvHeader + "\n").utf8)) }
        var written = 0
        try store.forEachCall(filter: filter) { call in
            let line = format == "csv" ? CallExport.csvRow(call) : CallExport.jsonLine(call)
            buffer.append(Data((line + "\n").utf8))
            written += 1
            if buffer.count > 1 << 20 {
                out.write(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
            if showProgress, written % 1000 == 0 || written == total {
                FileHandle.standardError.write(Data("\rexported \(written)/\(total) calls (\(written * 100 / max(total, 1))%)".utf8))
            }
        }
        out.write(buffer)
        if showProgress { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

struct Prune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete calls older than a period (their payloads, tags and search entries with them).")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "A period like 90d, 12h, 30m.") var olderThan: String

    func run() async throws {
        guard let period = RetentionPeriod.seconds(olderThan) else {
            throw ValidationError("--older-than takes a period like 90d, 12h or 30m")
        }
        let deleted = try await database.open().prune(before: Date().timeIntervalSince1970 - period)
        print("deleted \(deleted) calls older than \(olderThan)")
    }
}

struct Reprice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Recompute stored costs from stored usage with the bundled table (and --pricing FILE).")
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var filters: FilterOptions
    @Option(help: "A pricing JSON file merged over the bundled table.") var pricing: String?

    func run() async throws {
        var table = try PricingTable.bundled()
        if let pricing {
            guard let data = FileManager.default.contents(atPath: pricing) else { throw ValidationError("cannot read \(pricing)") }
            table = table.merging(try PricingTable.decode(data))
        }
        let result = try await database.open().reprice(with: table, filter: try filters.filter())
        print("repriced \(result.calls) calls with pricing \(table.version): \(result.changed) changed")
    }
}
