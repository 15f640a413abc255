import Foundation
import Logging
import Yams

/// The settings of `serve` from three sources, merged by key: config file, then
/// `LLMTAP_*` environment variables, then flags (each overriding the one before).
/// Keys are the long option names (`api-port`, `db`, `provider`…); in the
/// environment, upper case with `_` (`LLMTAP_API_PORT`). `provider` and `alias`
/// take a list (`NAME=URL`, `NAME=MODEL`; comma-separated in the environment) or,
/// in a file, a map. Provider keys for the engine endpoint come from the
/// environment only (`OPENAI_API_KEY`, `<NAME>_API_KEY`), and stay in memory.
public struct ConfigurationSources {
    var values: [String: String] = [:]
    var providers: [String: String] = [:]
    var aliases: [String: String] = [:]
    var proxyKeys: [String: String] = [:]
    /// Settings that take a list (`cors-origin`, `redact`) given as one: from the file or repeated flags.
    var lists: [String: [String]] = [:]
    var environment: [String: String] = [:]

    /// The setting names, as long option names.
    public static let keys = [
        "host", "port", "api-host", "api-port", "db", "upstream", "pricing", "api-token", "retain", "retain-payloads",
        "log-level", "max-body-bytes", "read-timeout", "inject-usage", "otlp-endpoint", "otlp-protocol",
        "max-connections", "client-timeout", "durability", "cors-origin", "redact",
    ]

    public init(file: String?, environment: [String: String]) throws {
        self.environment = environment
        if let file { try load(file) }
        for key in Self.keys {
            let name = "LLMTAP_" + key.uppercased().replacingOccurrences(of: "-", with: "_")
            if let value = environment[name] {
                values[key] = value
                lists[key] = nil  // the environment overrides a list from the file
            }
        }
        if let list = environment["LLMTAP_PROVIDER"] ?? environment["LLMTAP_PROVIDERS"] {
            for item in list.split(separator: ",") { try Self.add(String(item), to: &providers, "provider", "URL") }
        }
        if let list = environment["LLMTAP_PROXY_KEY"] ?? environment["LLMTAP_PROXY_KEYS"] {
            for item in list.split(separator: ",") { try Self.add(String(item), to: &proxyKeys, "proxy key", "TOKEN") }
        }
        if let list = environment["LLMTAP_ALIAS"] ?? environment["LLMTAP_ALIASES"] {
            for item in list.split(separator: ",") { try Self.add(String(item), to: &aliases, "alias", "MODEL") }
        }
    }

    private mutating func load(_ path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigurationError("cannot read the config file \(path)")
        }
        // YAML is a superset of JSON: one parser reads both.
        guard let document = try Yams.load(yaml: text) as? [String: Any] else {
            throw ConfigurationError("the config file \(path) is not a map of settings")
        }
        for (rawKey, value) in document {
            let key = rawKey.replacingOccurrences(of: "_", with: "-")
            if key == "provider" || key == "providers" {
                if let map = value as? [String: Any] {
                    for (name, url) in map { providers[name] = "\(url)" }
                } else if let list = value as? [Any] {
                    for item in list { try Self.add("\(item)", to: &providers, "provider", "URL") }
                }
            } else if key == "proxy-key" || key == "proxy-keys" {
                if let map = value as? [String: Any] {
                    for (name, token) in map { proxyKeys[name] = "\(token)" }
                } else if let list = value as? [Any] {
                    for item in list { try Self.add("\(item)", to: &proxyKeys, "proxy key", "TOKEN") }
                }
            } else if key == "alias" || key == "aliases" {
                if let map = value as? [String: Any] {
                    for (name, model) in map { aliases[name] = "\(model)" }
                } else if let list = value as? [Any] {
                    for item in list { try Self.add("\(item)", to: &aliases, "alias", "MODEL") }
                }
            } else if Self.keys.contains(key), let list = value as? [Any] {
                lists[key] = list.map { "\($0)" }
            } else if Self.keys.contains(key) {
                values[key] = "\(value)"
            } else {
                throw ConfigurationError("unknown setting '\(rawKey)' in \(path)")
            }
        }
    }

    private static func add(_ item: String, to map: inout [String: String], _ what: String, _ value: String) throws {
        guard let eq = item.firstIndex(of: "="), eq != item.startIndex, item.index(after: eq) != item.endIndex else {
            throw ConfigurationError("a \(what) is NAME=\(value), not '\(item)'")
        }
        map[String(item[..<eq]).trimmingCharacters(in: .whitespaces)] =
            String(item[item.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
    }

    /// Flags given on the command line, by long option name; they override everything.
    public mutating func apply(
        flags: [String: String], providers: [String], aliases: [String] = [], proxyKeys: [String] = [],
        lists flagLists: [String: [String]] = [:]
    ) throws {
        values.merge(flags) { _, flag in flag }
        for (key, list) in flagLists where !list.isEmpty { lists[key] = list }
        for item in proxyKeys { try Self.add(item, to: &self.proxyKeys, "proxy key", "TOKEN") }
        for item in providers { try Self.add(item, to: &self.providers, "provider", "URL") }
        for item in aliases { try Self.add(item, to: &self.aliases, "alias", "MODEL") }
    }

    public func configuration() throws -> LLMTapConfiguration {
        var c = LLMTapConfiguration()
        if let v = values["host"] { c.host = v }
        if let v = values["port"] { c.port = try int(v, "port") }
        if let v = values["api-host"] { c.apiHost = v }
        if let v = values["api-port"] { c.apiPort = try int(v, "api-port") }
        if let v = values["db"] { c.databasePath = v }
        if let v = values["upstream"] { c.upstream = v }
        c.pricingFile = values["pricing"]
        c.apiToken = values["api-token"]
        c.retain = values["retain"]
        c.retainPayloads = values["retain-payloads"]
        if let v = values["log-level"] {
            guard let level = Logger.Level(rawValue: v.lowercased()) else {
                throw ConfigurationError("unknown log level '\(v)'")
            }
            c.logLevel = level
        }
        if let v = values["max-body-bytes"] { c.maxBodyBytes = try int(v, "max-body-bytes") }
        if let v = values["read-timeout"] {
            guard let seconds = Double(v), seconds > 0 else { throw ConfigurationError("read-timeout must be seconds > 0") }
            c.readTimeout = .milliseconds(Int64(seconds * 1000))
        }
        c.otlpEndpoint = values["otlp-endpoint"]
        if let v = values["otlp-protocol"] {
            guard CallSpans.OTLPProtocol(rawValue: v) != nil else {
                throw ConfigurationError("otlp-protocol is http/protobuf or http/json, not '\(v)'")
            }
            c.otlpProtocol = v
        }
        if let endpoint = c.otlpEndpoint, URL(string: endpoint)?.host == nil {
            throw ConfigurationError("otlp-endpoint is not a URL: '\(endpoint)'")
        }
        if let v = values["max-connections"] { c.maxConnections = max(1, try int(v, "max-connections")) }
        if let v = values["client-timeout"] {
            guard let seconds = Double(v), seconds > 0 else { throw ConfigurationError("client-timeout must be seconds > 0") }
            c.clientHeaderTimeout = .milliseconds(Int64(seconds * 1000))
            c.clientBodyTimeout = max(c.clientBodyTimeout, c.clientHeaderTimeout)
        }
        if let v = values["durability"] {
            guard let mode = LLMTapConfiguration.Durability(rawValue: v.lowercased()) else {
                throw ConfigurationError("durability is fast or sync, not '\(v)'")
            }
            c.durability = mode
        }
        c.corsOrigins = list("cors-origin")
        c.redactions = list("redact")  // names and patterns are checked by buildApplication, before anything opens
        if let v = values["inject-usage"] { c.injectUsage = !["false", "0", "no", "off"].contains(v.lowercased()) }
        c.providers.merge(providers) { _, new in new }
        c.aliases = aliases
        c.proxyKeys = proxyKeys
        for name in c.providers.keys {
            let variable = name.uppercased().replacingOccurrences(of: "-", with: "_") + "_API_KEY"
            if let key = environment[variable], !key.isEmpty { c.providerKeys[name] = key }
        }
        for (name, url) in c.providers where URL(string: url)?.host == nil {
            throw ConfigurationError("provider \(name) has no valid URL: '\(url)'")
        }
        guard URL(string: c.upstream)?.host != nil else { throw ConfigurationError("--upstream is not a URL: '\(c.upstream)'") }
        return c
    }

    /// A list setting: repeated flags or a list in the file as given, a single value split at commas.
    private func list(_ key: String) -> [String] {
        if let list = lists[key] { return list }
        guard let value = values[key] else { return [] }
        return value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    private func int(_ value: String, _ key: String) throws -> Int {
        guard let n = Int(value), n >= 0 else { throw ConfigurationError("\(key) must be a whole number, not '\(value)'") }
        return n
    }
}
