import ArgumentParser
import LLMTapServer

@main
struct LLMTapCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "llmtap",
        abstract: "A transparent proxy that records every LLM call to SQLite.",
        subcommands: [
            Serve.self, Sessions.self, Show.self, Cost.self, Tail.self, Export.self, Import.self, Prune.self, Reprice.self, Check.self, Verify.self,
            Schema.self,
        ],
        defaultSubcommand: Serve.self
    )
}
