import LLMTapAdapters
import LLMTapCore
import NIOCore

/// Where a proxied request goes (SPEC §2 routing).
struct Route: Sendable, Equatable {
    /// The provider's name as recorded (`openai`, `anthropic`, a custom name…).
    var provider: String
    /// The full upstream URL: base URL + path + query.
    var url: String
    /// The upstream path, e.g. `/v1/chat/completions`.
    var endpoint: String
    var api: WireAPI
    /// `url` read for the hot path's pool: its base was parsed once, when routes were made.
    var address: UpstreamAddress? = nil
}

/// Where a call's request goes: the upstream to connect to, and the path (with query) to ask for.
struct UpstreamAddress: Sendable, Equatable {
    var target: UpstreamTarget
    var path: String
}

/// Maps request paths to upstreams:
/// - `/{provider}/REST` → that provider's base URL + `/REST`;
/// - `/v1/...` → the default upstream;
/// - `/api/generate`, `/api/chat` → the `ollama` provider.
struct Routes: Sendable {
    let providers: [String: String]
    let defaultUpstream: String
    let defaultProviderName: String
    /// Each base URL read once (`UpstreamTarget.parse`), not once per call.
    private let parsed: [String: UpstreamAddress]

    init(providers: [String: String], defaultUpstream: String) {
        let providers = providers.mapValues(Self.trimmingSlash)
        let upstream = Self.trimmingSlash(defaultUpstream)
        self.providers = providers
        self.defaultUpstream = upstream
        var parsed: [String: UpstreamAddress] = [:]
        for base in Array(providers.values) + [upstream] where base.firstIndex(where: { "?#".contains($0) }) == nil {
            if let (target, path) = UpstreamTarget.parse(base) { parsed[base] = UpstreamAddress(target: target, path: path == "/" ? "" : path) }
        }
        self.parsed = parsed
        // The default upstream records under a provider's name when it is one, else under its host.
        self.defaultProviderName = providers.keys.sorted().first { providers[$0] == upstream } ?? Self.host(of: upstream)
    }

    func route(path: String, query: String?) -> Route? {
        let suffix = query.map { $0.isEmpty ? "" : "?" + $0 } ?? ""
        let segments = path.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        // path starts with "/": segments[0] == "", segments[1] == "name/rest"
        guard segments.count == 2 else { return nil }
        let rest = segments[1]
        let first = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(first[0])
        if let base = providers[name], first.count == 2 {
            let endpoint = "/" + first[1]
            return route(name, base: base, endpoint: endpoint, suffix: suffix, api: WireAPI.of(endpoint: endpoint))
        }
        if path == "/v1/messages", let base = providers["anthropic"] {
            return route("anthropic", base: base, endpoint: path, suffix: suffix, api: .anthropicMessages)
        }
        if name == "v1" {
            return route(defaultProviderName, base: defaultUpstream, endpoint: path, suffix: suffix, api: WireAPI.of(endpoint: path))
        }
        if path == "/api/generate" || path == "/api/chat", let base = providers["ollama"] {
            return route("ollama", base: base, endpoint: path, suffix: suffix, api: WireAPI.of(endpoint: path))
        }
        return nil
    }

    private func route(_ provider: String, base: String, endpoint: String, suffix: String, api: WireAPI) -> Route {
        var address = parsed[base]
        address?.path += endpoint + suffix
        return Route(provider: provider, url: base + endpoint + suffix, endpoint: endpoint, api: api, address: address)
    }

    static func trimmingSlash(_ url: String) -> String {
        var url = url
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }

    static func host(of url: String) -> String {
        let afterScheme = url.range(of: "://").map { url[$0.upperBound...] } ?? url[...]
        return String(afterScheme.prefix { $0 != "/" })
    }
}
