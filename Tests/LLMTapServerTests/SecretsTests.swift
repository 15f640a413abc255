import AsyncHTTPClient
import Foundation
import NIOCore
import LLMTapStore
import LLMTapTestSupport
import Testing

struct SecretsTests {
    /// After calls carrying a provider key in every header form, its bytes are in no file llmtap
    /// wrote, no log line (at `trace`, where the HTTP client logs too), no metric, no API answer.
    @Test func providerKeysNeverReachTheDisk() async throws {
        let logs = LogCapture()
        let store = try await Tap.run(logs: logs, configure: { $0.recorder.capacity = 1 }) { tap in
            for headers in [[], [("x-api-key", Tap.secretKey)], [("api-key", Tap.secretKey)]] {
                let response = try await tap.post(body: WireSamples.request(stream: true), headers: headers)
                _ = await Tap.read(response)
            }
            #expect(await eventually { tap.app.recorder.stats.written == 3 })
            let id = try #require(try await tap.api("/api/requests").json?["requests"]?[0]?["id"]?.stringValue)
            for path in ["/api/requests", "/api/requests/\(id)", "/api/requests/\(id)/raw", "/api/sessions", "/metrics", "/api/stats"] {
                let answer = try await tap.api(path)
                #expect(answer.status == 200)
                #expect(!answer.body.contains(Tap.secretKey), "key in \(path)")
            }
        }
        #expect(!logs.lines.isEmpty)
        for line in logs.lines { #expect(!line.contains(Tap.secretKey), "key in a log line: \(line.prefix(200))") }
        let calls = try store.calls()
        #expect(calls.count == 3)
        #expect(Set(calls.compactMap(\.keyFingerprint)).count == 1)  // one key, one fingerprint
        let dir = URL(fileURLWithPath: store.path).deletingLastPathComponent()
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(files.contains("llmtap.sqlite"))
        let needle = Data(Tap.secretKey.utf8)
        for file in files {
            let data = try Data(contentsOf: dir.appendingPathComponent(file))
            #expect(data.range(of: needle) == nil, "key found in \(file)")
        }
        let keyFile = dir.appendingPathComponent("llmtap.sqlite.fingerprint-key").path
        let permissions = try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? Int
        #expect(permissions == 0o600)
    }
}

/// Virtual keys: clients hold proxy keys; llmtap swaps in the provider key and attributes
/// the call to the proxy key's name; anything else is refused before reaching a provider.
struct ProxyKeyTests {
    static let providerKey = "sk-upstream-REAL-91d2"

    /// POSTs with exactly `headers` (no default key).
    static func post(_ tap: Tap, _ path: String, _ body: String, _ headers: [(String, String)]) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: tap.url(path))
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: body))
        return try await tap.client.execute(request, timeout: .seconds(10))
    }

    @Test func proxyKeysAreSwappedForTheProviderKey() async throws {
        let store = try await Tap.run(configure: {
            $0.proxyKeys = ["team-a": "pk-team-a-7f3", "team-b": "pk-team-b-2c8"]
            $0.providerKeys = ["local": Self.providerKey, "anthropic": Self.providerKey]
        }) { tap in
            let ok = try await Self.post(
                tap, "/v1/chat/completions", WireSamples.request(stream: false), [("authorization", "Bearer pk-team-a-7f3")])
            #expect(ok.status.code == 200)
            _ = await Tap.read(ok)
            #expect(tap.upstream.requests.last?.header("authorization") == "Bearer \(Self.providerKey)")
            let anthropic = try await Self.post(
                tap, "/anthropic/v1/messages", WireSamples.anthropicRequest(stream: false), [("x-api-key", "pk-team-b-2c8")])
            _ = await Tap.read(anthropic)
            let sent = try #require(tap.upstream.requests.last)
            #expect(sent.header("x-api-key") == Self.providerKey && sent.header("authorization") == nil)
            let before = tap.upstream.requests.count
            for headers in [[("authorization", "Bearer pk-team-a-7f4")], [("x-api-key", Self.providerKey)], []] {
                let refused = try await Self.post(tap, "/v1/chat/completions", WireSamples.request(stream: false), headers)
                #expect(refused.status.code == 401)
                #expect(await Tap.read(refused).bytes.contains("invalid_api_key"))
            }
            let engine = try await Self.post(tap, "/api/engine/chat/local", #"{"model":"gpt-4o-mini","chat_input":"hi"}"#, [])
            #expect(engine.status.code == 401)
            #expect(tap.upstream.requests.count == before, "refused calls never reach a provider")
            let byKey = try await tap.api("/api/cost?group_by=api_key").json?["groups"]?.arrayValue ?? []
            #expect(Set(byKey.compactMap { $0["key"]?.stringValue }) == ["proxy:team-a", "proxy:team-b"])
        }
        #expect(try store.calls().count == 2)
        try expectNoKeyOnDisk(store, key: Self.providerKey)
        try expectNoKeyOnDisk(store, key: "pk-team-a-7f3")
    }
}
