import Testing

@testable import LLMTapServer

struct RoutesTests {
    /// The hot path's pool sends to `Route.address`, read once from each base URL; it is what
    /// reading the route's whole URL per call gave (`UpstreamTarget.parse`).
    @Test func aRoutesAddressIsItsURLRead() throws {
        let routes = Routes(
            providers: [
                "openai": "https://api.openai.com/", "local": "http://127.0.0.1:11434", "proxy": "http://user:pw@gw.internal:8080/openai/v1",
                "six": "http://[::1]:9000/base/", "anthropic": "https://api.anthropic.com", "ollama": "http://localhost:11434",
                "odd": "http://host/base?key=1",
            ],
            defaultUpstream: "http://upstream.test:8000/prefix")
        let requests: [(String, String?)] = [
            ("/openai/v1/chat/completions", nil), ("/local/api/chat", "a=1&b=2"), ("/proxy/chat/completions", ""),
            ("/six/v1/embeddings", "x"), ("/v1/messages", nil), ("/v1/chat/completions", "q"), ("/api/generate", nil),
            ("/odd/v1/models", nil),
        ]
        var addressed = 0
        for (path, query) in requests {
            let route = try #require(routes.route(path: path, query: query))
            let read = UpstreamTarget.parse(route.url).map { UpstreamAddress(target: $0.target, path: $0.path) }
            if let address = route.address {
                addressed += 1
                #expect(address == read, "\(path) -> \(route.url)")
            } else {
                #expect(route.url.contains("?key="), "only a base with its own query is read per call: \(route.url)")
            }
        }
        #expect(addressed == requests.count - 1)
        #expect(routes.route(path: "/v1/chat/completions", query: "q")?.address?.path == "/prefix/v1/chat/completions?q")
    }
}
