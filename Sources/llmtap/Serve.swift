import ArgumentParser
import Foundation
import LLMTapServer
import Logging

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the proxy and the query API.",
        discussion: """
            Every option can also come from a config file (--config llmtap.json or .yaml, keys as the \
            long option names) or an LLMTAP_* environment variable (LLMTAP_PORT, LLMTAP_API_TOKEN, …). \
            Flags win over the environment, the environment over the file.
            """
    )

    @Option(help: "A JSON or YAML config file.") var config: String?
    @Option(help: "Proxy listen address (default 127.0.0.1).") var host: String?
    @Option(help: "Proxy port (default 8080).") var port: Int?
    @Option(help: "Query API listen address (default 127.0.0.1).") var apiHost: String?
    @Option(help: "Query API port (default 8081).") var apiPort: Int?
    @Option(help: "SQLite database path (default ./llmtap.sqlite).") var db: String?
    @Option(help: "Default upstream for /v1/... (default https://api.openai.com).") var upstream: String?
    @Option(help: "A provider as NAME=URL, reachable as /NAME/...; repeatable.") var provider: [String] = []
    @Option(help: "A model alias as NAME=MODEL (e.g. auto=gpt-4o-mini), rewritten in requests; repeatable.")
    var alias: [String] = []
    @Option(help: "A virtual key as NAME=TOKEN: clients must send one; llmtap sends <PROVIDER>_API_KEY upstream. Repeatable.")
    var proxyKey: [String] = []
    @Option(help: "A pricing JSON file merged over the bundled table.") var pricing: String?
    @Option(help: "Bearer token required by the query API.") var apiToken: String?
    @Option(help: "Keep calls this long (e.g. 90d).") var retain: String?
    @Option(help: "Keep request and response bodies this long (e.g. 14d); the facts stay.") var retainPayloads: String?
    @Option(help: "trace, debug, info, notice, warning, error, critical.") var logLevel: String?
    @Option(help: "Largest request body accepted, in bytes (default 33554432).") var maxBodyBytes: Int?
    @Option(help: "Longest upstream silence, in seconds (default 600).") var readTimeout: Double?
    @Flag(help: "Do not add stream_options.include_usage to OpenAI streams.") var noInjectUsage = false
    @Option(help: "Export one OpenTelemetry span per call to this OTLP/HTTP collector (e.g. http://127.0.0.1:4318).")
    var otlpEndpoint: String?
    @Option(help: "http/protobuf (default) or http/json.") var otlpProtocol: String?
    @Option(help: "Open client connections beyond which new ones get 503 (default 4096).") var maxConnections: Int?
    @Option(help: "Seconds a client may take to send a request's head, or stay idle between requests (default 30).")
    var clientTimeout: Double?
    @Option(help: "fast (default; recorded ~10 ms after the response) or sync (recorded before the response's last byte).")
    var durability: String?
    @Option(help: "An origin the query API allows cross-origin requests from (CORS is off without one); repeatable.")
    var corsOrigin: [String] = []
    @Option(help: "Blank out of stored content and bodies: api-keys, emails or regex:PATTERN; repeatable (off by default).")
    var redact: [String] = []

    /// The options given on the command line, by long name.
    var givenFlags: [String: String] {
        let given: [String: String?] = [
            "host": host, "port": port.map(String.init), "api-host": apiHost, "api-port": apiPort.map(String.init),
            "db": db, "upstream": upstream, "pricing": pricing, "api-token": apiToken, "retain": retain, "retain-payloads": retainPayloads,
            "log-level": logLevel, "max-body-bytes": maxBodyBytes.map(String.init),
            "read-timeout": readTimeout.map { String($0) }, "inject-usage": noInjectUsage ? "false" : nil,
            "otlp-endpoint": otlpEndpoint, "otlp-protocol": otlpProtocol,
            "max-connections": maxConnections.map(String.init), "client-timeout": clientTimeout.map { String($0) },
            "durability": durability,
        ]
        return given.compactMapValues { $0 }
    }

    func run() async throws {
        var sources = try ConfigurationSources(file: config, environment: ProcessInfo.processInfo.environment)
        try sources.apply(flags: givenFlags, providers: provider, aliases: alias, proxyKeys: proxyKey,
            lists: ["cors-origin": corsOrigin, "redact": redact])
        let configuration = try sources.configuration()
        let logger = {
            var logger = Logger(label: "llmtap")
            logger.logLevel = configuration.logLevel
            return logger
        }()
        let app = try buildApplication(configuration, logger: logger) { listener, port in
            let host = listener == .proxy ? configuration.host : configuration.apiHost
            logger.notice("listening", metadata: ["llmtap.listener": "\(listener)", "llmtap.address": "\(host):\(port)"])
        }
        try await app.run()
    }
}
