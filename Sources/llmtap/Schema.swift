import ArgumentParser
import LLMTapStore

struct Schema: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the database schema (what schema.sql holds), migrating the database first.")

    @Option(help: "SQLite database path.") var db = "llmtap.sqlite"

    func run() throws {
        print(try Store(path: db).schemaDump(), terminator: "")
    }
}
