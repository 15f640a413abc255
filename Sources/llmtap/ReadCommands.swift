import ArgumentParser
import Foundation
import LLMTapCore
import LLMTapServer
import LLMTapStore

/// `--json`: the query API's JSON instead of a table, for scripts.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print the query API's JSON instead of a table.") var json = false

    func print(_ value: JSONValue) { Swift.print(value.canonicalText) }
}

/// Options shared by the commands that read the database (they work while `serve` runs).
struct DatabaseOptions: ParsableArguments {
    @Option(help: "SQLite database path.") var db = "llmtap.sqlite"

    func open() throws -> Store {
        guard FileManager.default.fileExists(atPath: db) else {
            throw ValidationError("no database at \(db) (start `llmtap serve` or pass --db)")
        }
        return try Store(path: db)
    }
}

struct FilterOptions: ParsableArguments {
    @Option(help: "Only calls since this Unix time or date (2026-11-22).") var from: String?
    @Option(help: "Only calls before this Unix time or date.") var to: String?
    @Option(help: "Only this model.") var model: String?
    @Option(help: "Only this provider.") var provider: String?
    @Option(help: "Only calls tagged key or key:value.") var tag: [String] = []
    @Option(name: .customLong("search"), help: "Only calls whose input or output contains these words.") var text: String?

    func filter() throws -> CallFilter {
        var filter = CallFilter()
        filter.from = try from.map(Self.time)
        filter.to = try to.map(Self.time)
        filter.model = model
        filter.provider = provider
        filter.text = text
        filter.tags = tag.map { item in
            guard let colon = item.firstIndex(of: ":") else { return (item, nil) }
            return (String(item[..<colon]), String(item[item.index(after: colon)...]))
        }
        return filter
    }

    static func time(_ text: String) throws -> Double {
        if let seconds = Timestamps.parse(text) { return seconds }
        throw ValidationError("'\(text)' is not a Unix time, a date (2026-11-22) or an RFC 3339 time")
    }
}

enum Format {
    static func time(_ seconds: Double) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }

    static func dollars(_ nano: Int64?) -> String {
        guard let nano else { return "unpriced" }
        return String(format: "$%.6f", Double(nano) / 1e9)
    }

    /// A sum that leaves unpriced calls out says so; all unpriced is not "$0".
    static func cost(_ nano: Int64, unpriced: Int, of requests: Int) -> String {
        if unpriced == 0 { return dollars(nano) }
        if unpriced == requests { return "unpriced" }
        return dollars(nano) + " (+\(unpriced) unpriced)"
    }

    static func seconds(_ value: Double?) -> String {
        value.map { String(format: "%.3fs", $0) } ?? "-"
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let widths = header.indices.map { column in
            ([header[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0
        }
        func line(_ cells: [String]) -> String {
            zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}

struct Sessions: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List sessions, most recently active first.")
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var filters: FilterOptions
    @Option(help: "How many sessions.") var limit = 20
    @OptionGroup var output: OutputOptions

    func run() throws {
        let page = try database.open().sessions(filter: try filters.filter(), limit: limit, cursor: nil)
        if output.json { return output.print(APIJSON.sessions(page)) }
        print(
            Format.table(
                ["SESSION", "LAST", "CALLS", "TOKENS IN/OUT", "COST", "MODELS"],
                page.items.map { s in
                    [
                        s.id, Format.time(s.lastAt), String(s.requests), "\(s.inputTokens)/\(s.outputTokens)",
                        Format.cost(s.costNanoUSD, unpriced: s.unpricedRequests, of: s.requests),
                        s.models.joined(separator: ","),
                    ]
                }))
    }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a session as a transcript, turn by turn.")
    @OptionGroup var database: DatabaseOptions
    @Argument(help: "The session id.") var session: String
    @OptionGroup var output: OutputOptions

    func run() throws {
        guard let (summary, calls) = try database.open().session(id: session) else {
            throw ValidationError("no session \(session)")
        }
        if output.json { return output.print(APIJSON.session(summary, calls: calls)) }
        print("session \(summary.id): \(summary.requests) calls, \(Format.dollars(summary.costNanoUSD)), \(summary.models.joined(separator: ", "))")
        for (n, call) in calls.enumerated() {
            let u = call.usage
            print(
                "\n── turn \(n + 1) · \(Format.time(call.createdAt)) · \(call.responseModel ?? call.model ?? "?") · \(call.outcome.rawValue)"
                    + " · \(u?.inputTokens ?? 0)→\(u?.outputTokens ?? 0) tokens · \(Format.dollars(call.costNanoUSD))"
                    + " · latency \(Format.seconds(call.latencyS)) · ttft \(Format.seconds(call.ttftS))")
            if n == 0, let system = call.context?.arrayValue?.first(where: { $0["role"]?.stringValue == "system" }) {
                print("system: \(system["content"]?.plainText ?? "")")
            }
            print("user: \(call.chatInput ?? "")")
            if let output = call.output { print("assistant: \(output)") }
            if let tools = call.toolCalls { print("tool calls: \(tools.canonicalText)") }
            if let error = call.errorMessage { print("error (\(call.errorType ?? "?")): \(error)") }
        }
    }
}

struct Cost: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Spend and tokens, grouped.")
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var filters: FilterOptions
    @Option(name: [.customLong("by"), .customLong("group-by")], help: "model, provider, day, hour, session, api_key or tag:<key>.")
    var groupBy = "model"
    @OptionGroup var output: OutputOptions

    func run() throws {
        guard let grouping = CostGrouping(groupBy) else { throw ValidationError("cannot group by '\(groupBy)'") }
        let report = try database.open().cost(groupBy: grouping, filter: try filters.filter())
        if output.json { return output.print(APIJSON.cost(report, groupBy: groupBy)) }
        print(
            Format.table(
                [groupBy.uppercased(), "CALLS", "TOKENS IN", "TOKENS OUT", "COST"],
                report.groups.map { g in
                    [g.key ?? "(none)", String(g.requests), String(g.inputTokens), String(g.outputTokens),
                     Format.cost(g.costNanoUSD, unpriced: g.unpricedRequests, of: g.requests)]
                }))
        print("\ntotal: \(report.total.requests) calls, \(Format.dollars(report.total.costNanoUSD))")
        if !report.unpriced.isEmpty {
            print("unpriced (not counted as free; add them with --pricing):")
            for g in report.unpriced { print("  \(g.key ?? "?"): \(g.requests) calls, \(g.inputTokens)/\(g.outputTokens) tokens") }
        }
    }
}

struct Tail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print new calls as they are recorded.")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Print this many recent calls first.") var last = 10
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let store = try database.open()
        var cursor = max(0, try store.lastRowID() - Int64(last))
        while !Task.isCancelled {
            let (calls, next) = try store.calls(afterRowID: cursor)
            for call in calls {
                if output.json {  // one call per line, as /api/events sends them
                    output.print(APIJSON.call(call, detail: false))
                    continue
                }
                print(
                    "\(Format.time(call.createdAt))  \(call.provider)  \(call.responseModel ?? call.model ?? "-")  \(call.outcome.rawValue)"
                        + "  \(call.usage?.inputTokens ?? 0)→\(call.usage?.outputTokens ?? 0)  \(Format.dollars(call.costNanoUSD))"
                        + "  \(Format.seconds(call.latencyS))  session=\(call.sessionID ?? "-")")
            }
            cursor = next
            if calls.isEmpty { try await Task.sleep(for: .milliseconds(500)) }
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check the database: integrity and schema version.")
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let store = try database.open()
        let integrity = try store.integrityCheck()
        let migrations = try store.appliedMigrations()
        let calls = try store.callCount()
        let spooled = Spool(path: database.db + ".spool").count
        if output.json {
            output.print(
                .object([
                    "integrity": .string(integrity), "migrations": .array(migrations.map(JSONValue.string)),
                    "calls": .int(Int64(calls)), "spooled": .int(Int64(spooled)),
                ]))
        } else {
            print("integrity: \(integrity)")
            print("migrations: \(migrations.joined(separator: ", "))")
            print("calls: \(calls)")
            print("spooled calls waiting: \(spooled)")
        }
        if integrity != "ok" { throw ExitCode.failure }
    }
}
