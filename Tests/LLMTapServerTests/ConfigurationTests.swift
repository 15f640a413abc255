import Foundation
import LLMTapServer
import LLMTapTestSupport
import Testing

struct ConfigurationTests {
    func write(_ text: String, ext: String) throws -> String {
        let path = TestFiles.path(extension: ext)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func flagsWinOverEnvironmentWhichWinsOverTheFile() throws {
        let file = try write(
            """
            port: 9000
            api-port: 9001
            db: from-file.sqlite
            log_level: debug
            providers:
              groq: https://api.groq.com/openai
            """, ext: "yaml")
        var sources = try ConfigurationSources(
            file: file, environment: ["LLMTAP_PORT": "9100", "LLMTAP_DB": "from-env.sqlite", "LLMTAP_PROVIDER": "vllm=http://10.0.0.5:8000"])
        try sources.apply(flags: ["db": "from-flag.sqlite"], providers: ["ollama=http://gpu:11434"])
        let c = try sources.configuration()
        #expect(c.port == 9100)
        #expect(c.apiPort == 9001)
        #expect(c.databasePath == "from-flag.sqlite")
        #expect(c.logLevel == .debug)
        #expect(c.providers["groq"] == "https://api.groq.com/openai")
        #expect(c.providers["vllm"] == "http://10.0.0.5:8000")
        #expect(c.providers["ollama"] == "http://gpu:11434")
        #expect(c.providers["openai"] == "https://api.openai.com")
    }

    @Test func jsonFilesAndDefaults() throws {
        let file = try write(#"{"upstream": "http://127.0.0.1:11434", "inject_usage": false}"#, ext: "json")
        let c = try ConfigurationSources(file: file, environment: [:]).configuration()
        #expect(c.upstream == "http://127.0.0.1:11434")
        #expect(!c.injectUsage)
        #expect(c.host == "127.0.0.1" && c.apiPort == 8081 && c.maxBodyBytes == 32 << 20)
    }

    @Test func badSettingsAreRefusedWithAReason() throws {
        let unknown = try write("prot: 9000\n", ext: "yaml")
        #expect(throws: ConfigurationError.self) { try ConfigurationSources(file: unknown, environment: [:]) }
        #expect(throws: ConfigurationError.self) {
            try ConfigurationSources(file: nil, environment: ["LLMTAP_PORT": "eighty"]).configuration()
        }
        #expect(throws: ConfigurationError.self) {
            var sources = try ConfigurationSources(file: nil, environment: [:])
            try sources.apply(flags: [:], providers: ["no-equals-sign"])
        }
    }

    /// A provider key with a line break (a key file read with its newline) would split the
    /// upstream request's head, which is not checked per request: llmtap refuses to start, and
    /// says which key without showing it.
    @Test func aProviderKeyAHeaderCannotCarryIsRefusedAtStart() throws {
        var c = LLMTapConfiguration()
        c.databasePath = TestFiles.path(extension: "sqlite")
        c.providerKeys = ["openai": "sk-good", "anthropic": "sk-ant-secret\nX-Injected: 1"]
        let error = try #require(throws: ConfigurationError.self) { try buildApplication(c) }
        #expect(error.description.contains("anthropic") && error.description.contains("ANTHROPIC_API_KEY"))
        #expect(!error.description.contains("sk-ant-secret"))
        // (Keys that are fine start llmtap: `SecretsTests` and `EngineTests` run with them.)
    }

    @Test func apiOnANonLoopbackAddressNeedsAToken() throws {
        var c = LLMTapConfiguration()
        c.apiHost = "0.0.0.0"
        c.databasePath = TestFiles.path(extension: "sqlite")
        #expect(throws: ConfigurationError.self) { try buildApplication(c) }
    }
}
