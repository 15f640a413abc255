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
    @Option(help: "jsonl (the API's call shape), csv, or backup (whole records with payloads, for llmtap import).")
    var format = "jsonl"
    @Option(help: "Only this session.") var session: String?

    func run() throws {
        guard ["jsonl", "csv", "backup"].contains(format) else { throw ValidationError("--format is jsonl, csv or backup") }
        let store = try database.open()
        var filter = try filters.filter()
        filter.sessionID = session
        let total = try store.count(filter: filter)
        let showProgress = isatty(STDERR_FILENO) == 1
        let out = FileHandle.standardOutput
        var buffer = Data()
        if format == "csv" { buffer.append(Data((CallExport.csvHeader + "\n").utf8)) }
        var written = 0
        try store.forEachCall(filter: filter, payloads: format == "backup") { call in
            let line =
                switch format {
                case "csv": CallExport.csvRow(call)
                case "backup": try CallExport.backupLine(call)
                default: CallExport.jsonLine(call)
                }
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

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore calls from a backup (`llmtap export --format backup`) into a database.",
        discussion: "Calls already in the database (same id) are left as they are, so importing twice adds nothing.")
    @OptionGroup var database: DatabaseOptions
    @Argument(help: "The backup file, or - for standard input.") var file: String

    func run() async throws {
        let store = try Store(path: database.db)  // created if missing: restoring into a new database is the point
        let handle = file == "-" ? FileHandle.standardInput : try FileHandle(forReadingFrom: URL(fileURLWithPath: file))
        var batch: [CallRecord] = []
        var lines = 0
        var pending = Data()
        func flush() async throws {
            guard !batch.isEmpty else { return }
            try await store.insert(batch)
            batch.removeAll(keepingCapacity: true)
        }
        while true {
            let chunk = handle.readData(ofLength: 1 << 20)
            pending.append(chunk)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = pending[pending.startIndex..<newline]
                pending.removeSubrange(pending.startIndex...newline)
                lines += 1
                guard !line.isEmpty else { continue }
                do {
                    batch.append(try CallExport.record(backupLine: line))
                } catch {
                    throw ValidationError("line \(lines) of \(file) is not a backup record: \(error)")
                }
                if batch.count == 1000 { try await flush() }
            }
            if chunk.isEmpty { break }
        }
        if !pending.isEmpty {
            lines += 1
            batch.append(try CallExport.record(backupLine: pending))
        }
        try await flush()
        print("imported \(lines) lines; the database holds \(try store.callCount()) calls")
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Walk the audit chain: report the first stored call that was altered, inserted or removed.",
        discussion: """
            Each call's link hashes its stored row and payload with the link before it; retention leaves a \
            signed checkpoint. Note the printed head: deleting the newest calls is caught by comparing it later.
            """)
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let report = try database.open().verifyChain()
        if output.json {
            var object: [String: JSONValue] = [
                "verified": .int(Int64(report.verified)), "unchained": .int(Int64(report.unchained)),
                "head": report.head.map(JSONValue.string) ?? .null, "ok": .bool(report.broken == nil),
            ]
            if let broken = report.broken {
                object["broken"] = .object(["id": .string(broken.id), "rowid": .int(broken.rowID), "reason": .string(broken.reason)])
            }
            output.print(.object(object))
        } else {
            if let checkpoint = report.checkpoint {
                print("from the retention checkpoint after rowid \(checkpoint.lastRowID) (signature \(checkpoint.signatureValid ? "valid" : "INVALID"))")
            }
            if report.unchained > 0 { print("\(report.unchained) calls written before the chain existed are not covered") }
            print("verified \(report.verified) calls")
            if let head = report.head { print("head \(head)") }
            if let broken = report.broken { print("BROKEN at call \(broken.id) (rowid \(broken.rowID)): \(broken.reason)") }
        }
        if report.broken != nil { throw ExitCode.failure }
    }
}

struct Prune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete old calls (with their payloads, tags and search entries), or only their payloads.")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Delete calls older than this period (90d, 12h, 30m).") var olderThan: String?
    @Option(help: "Drop the request and response bodies of calls older than this period; keep their facts.")
    var payloadsOlderThan: String?

    func run() async throws {
        guard olderThan != nil || payloadsOlderThan != nil else {
            throw ValidationError("give --older-than and/or --payloads-older-than")
        }
        let store = try database.open()
        let now = Date().timeIntervalSince1970
        if let olderThan {
            guard let period = RetentionPeriod.seconds(olderThan) else {
                throw ValidationError("--older-than takes a period like 90d, 12h or 30m")
            }
            print("deleted \(try await store.prune(before: now - period)) calls older than \(olderThan)")
        }
        if let payloadsOlderThan {
            guard let period = RetentionPeriod.seconds(payloadsOlderThan) else {
                throw ValidationError("--payloads-older-than takes a period like 14d, 12h or 30m")
            }
            print("dropped the payloads of \(try await store.dropPayloads(before: now - period)) calls older than \(payloadsOlderThan)")
        }
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
