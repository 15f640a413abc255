import Foundation
import LLMTapStore
import Logging

/// Everything `llmtap serve` can be told, each field defaulted. Built from
/// flags, `LLMTAP_*` environment variables and a config file by the
/// executable, normalized once here.
public struct LLMTapConfiguration: Sendable {
    /// Proxy listener.
    public var host = "127.0.0.1"
    public var port = 8080
    /// Query API and dashboard listener.
    public var apiHost = "127.0.0.1"
    public var apiPort = 8081
    public var databasePath = "llmtap.sqlite"
    /// Where `/v1/...` without a provider prefix goes.
    public var upstream = "https://api.openai.com"
    /// Named providers reachable as `/{name}/...`; the built-ins can be overridden.
    public var providers: [String: String] = LLMTapConfiguration.builtInProviders
    /// Model aliases applied to requests (`auto` → `gpt-4o-mini`); only the names listed.
    public var aliases: [String: String] = [:]
    /// Virtual keys, name → token (`--proxy-key team-a=pk-…`): when any is set, every proxied
    /// call must bring one, and llmtap sends the provider's key (`providerKeys`) instead.
    public var proxyKeys: [String: String] = [:]
    /// Provider keys the engine endpoint uses when a call brings none (`OPENAI_API_KEY`…).
    /// In memory only: never written, logged or returned.
    public var providerKeys: [String: String] = [:]
    /// A pricing file merged over the bundled table.
    public var pricingFile: String?
    public var apiToken: String?
    public var retain: String?
    /// Drop request and response bodies of calls older than this (`14d`), keeping their facts.
    public var retainPayloads: String?
    public var logLevel: Logger.Level = .info
    /// Request bodies above this many bytes get 413.
    public var maxBodyBytes = 32 << 20
    /// Add `stream_options.include_usage` to OpenAI-style streams for exact token counts.
    public var injectUsage = true
    public var connectTimeout: Duration = .seconds(10)
    /// The longest silence tolerated from an upstream, between any two reads (slow models think).
    public var readTimeout: Duration = .seconds(600)
    /// A kept-alive connection to an upstream closes after this long unused.
    public var upstreamIdleTimeout: Duration = .seconds(60)
    public var recorder = Recorder.Configuration()
    /// An OpenTelemetry collector's OTLP/HTTP base URL (`http://collector:4318`): one span
    /// per call is exported there. Off when nil.
    public var otlpEndpoint: String?
    /// `http/protobuf` (the OTLP default) or `http/json`.
    public var otlpProtocol = "http/protobuf"
    /// How long spans wait to be exported in a batch.
    public var otlpFlushInterval: Duration = .seconds(5)
    public var spoolMaxBytes = 256 << 20
    /// Open client connections on the proxy beyond which a new one is answered 503.
    public var maxConnections = 4096
    /// How long a client may take to send a request's head (and idle between requests).
    public var clientHeaderTimeout: Duration = .seconds(30)
    /// How long a client may take to send a request's body after its head.
    public var clientBodyTimeout: Duration = .seconds(120)
    /// `fast` (default): a call is recorded within ~10 ms after its response ends.
    /// `sync`: a call's record is committed before the last byte of its response is sent.
    public var durability: Durability = .fast
    /// Origins the query API answers cross-origin requests for (CORS); none when empty.
    public var corsOrigins: [String] = []
    /// What to blank out of stored content and raw bodies (`api-keys`, `emails`, `regex:…`).
    public var redactions: [String] = []

    public enum Durability: String, Sendable {
        case fast, sync
    }

    public static let builtInProviders = [
        "openai": "https://api.openai.com",
        "anthropic": "https://api.anthropic.com",
        "ollama": "http://127.0.0.1:11434",
    ]

    public init() {}

    /// The spool file beside the database.
    public var spoolPath: String { databasePath + ".spool" }
    /// The key of the key fingerprints, beside the database.
    public var fingerprintKeyPath: String { databasePath + ".fingerprint-key" }
}

/// What is wrong with a configuration, said before anything starts.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
