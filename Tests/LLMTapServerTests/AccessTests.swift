import AsyncHTTPClient
import Foundation
import LLMTapCore
import LLMTapServer
import LLMTapStore
import LLMTapTestSupport
import NIOCore
import Testing

/// Who may read what llmtap keeps, and what it keeps of secrets: CORS, redaction, hostile
/// query parameters.
struct AccessTests {
    /// A cross-origin request, with or without a CORS preflight.
    private func crossOrigin(_ tap: Tap, _ path: String, origin: String, preflight: Bool = false) async throws
        -> (status: Int, allowOrigin: String?)
    {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(tap.apiPort)\(path)")
        request.headers.add(name: "origin", value: origin)
        if preflight {
            request.method = .OPTIONS
            request.headers.add(name: "access-control-request-method", value: "GET")
        }
        let response = try await tap.client.execute(request, timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), response.headers.first(name: "access-control-allow-origin"))
    }

    @Test func corsIsOffUnlessConfigured() async throws {
        _ = try await Tap.run { tap in
            let simple = try await crossOrigin(tap, "/api/sessions", origin: "https://evil.example")
            #expect(simple.allowOrigin == nil)  // the browser keeps the answer from the page
            let preflight = try await crossOrigin(tap, "/api/sessions", origin: "https://evil.example", preflight: true)
            #expect(preflight.allowOrigin == nil)
            #expect(preflight.status >= 400)
        }
        _ = try await Tap.run(configure: { $0.corsOrigins = ["https://grafana.example"] }) { tap in
            let allowed = try await crossOrigin(tap, "/api/cost", origin: "https://grafana.example")
            #expect(allowed.status == 200)
            #expect(allowed.allowOrigin == "https://grafana.example")
            let preflight = try await crossOrigin(tap, "/api/cost", origin: "https://grafana.example", preflight: true)
            #expect(preflight.status == 204)
            #expect(preflight.allowOrigin == "https://grafana.example")
            let other = try await crossOrigin(tap, "/api/cost", origin: "https://evil.example")
            #expect(other.allowOrigin == nil)
        }
    }

    @Test func redactionBlanksSecretsInContentAndRawBytes() async throws {
        let leakedKey = "sk-proj-LEAKED0123456789abcdefXYZ"
        let email = "jane.doe@example.com"
        let said = "my key is \(leakedKey), mail me at \(email) about order-482913"
        let body = JSONValue.object([
            "model": .string("echo-gzip"), "user": .string(email),
            "messages": .array([.object(["role": .string("user"), "content": .string(said)])]),
        ]).canonicalText
        let store = try await Tap.run(configure: { $0.redactions = ["api-keys", "emails", #"regex:order-\d{6}"#] }) { tap in
            let response = try await tap.post(body: body, headers: [("X-Session-Id", "redact")])
            // The client gets the upstream's answer untouched (still gzip).
            #expect(response.headers.first(name: "content-encoding") == "gzip")
            var zipped = try await response.body.collect(upTo: 1 << 20)
            let answer = String(buffer: try zipped.decompress(with: .gzip()))
            #expect(answer.contains(email))
            #expect(await eventually { tap.app.recorder.stats.written == 1 })
        }
        let listed = try #require(try store.calls().first { $0.sessionID == "redact" })
        let call = try #require(try store.call(id: listed.id))  // with its payloads
        let redacted = "my key is [REDACTED:api-keys], mail me at [REDACTED:emails] about [REDACTED:custom]"
        #expect(call.chatInput == redacted)
        #expect(call.output == "You said: " + redacted)
        #expect(call.parameters?["user"] == .string("[REDACTED:emails]"))
        #expect(call.responseContentEncoding == nil)  // stored decoded, so it could be redacted
        for raw in [call.requestBody, call.responseBody] {
            let text = String(decoding: raw, as: UTF8.self)
            #expect(JSONValue.parse(raw) != nil)  // still valid JSON
            #expect(text.contains(redacted))
        }
        // Neither secret is anywhere in a file llmtap wrote.
        let directory = URL(fileURLWithPath: store.path).deletingLastPathComponent()
        for file in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
            let bytes = try Data(contentsOf: directory.appendingPathComponent(file))
            #expect(bytes.range(of: Data(leakedKey.utf8)) == nil, "\(file)")
            #expect(bytes.range(of: Data(email.utf8)) == nil, "\(file)")
        }
    }

    @Test func redactionSettingsAreCheckedAtStart() throws {
        let all = try Redactor(Array(Redactor.builtIns.keys))
        #expect(all.redact("Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345") == "Authorization: [REDACTED:api-keys]")
        #expect(all.redact("AKIAABCDEFGHIJKLMNOP and sk-ant-api03-abcdefghijklmnop0123") == "[REDACTED:api-keys] and [REDACTED:api-keys]")
        #expect(all.redact("no secrets, just sk- and @ signs") == "no secrets, just sk- and @ signs")
        #expect(throws: (any Error).self) { try Redactor(["phone-numbers"]) }
        #expect(throws: (any Error).self) { try Redactor(["regex:(unclosed"]) }
        #expect(try Redactor([]).redact("sk-proj-LEAKED0123456789abcdefXYZ") == "sk-proj-LEAKED0123456789abcdefXYZ")
    }

    /// Hostile input in every filter and id: answered 4xx or as plain data, never a 500,
    /// and the database is untouched.
    @Test func injectionAndTraversalAttemptsAreJustData() async throws {
        let attacks = [
            "' OR 1=1 --", "\"; DROP TABLE calls; --", "1; DELETE FROM calls", "../../../../etc/passwd",
            "..%2F..%2Fetc%2Fpasswd", "%00", String(repeating: "A", count: 20_000),
            "\u{00A0}", " \t ",  // found by schemathesis: white space only made an empty FTS5 query (500)
            "2.0079779533360655e+180", "-1e300",  // found by schemathesis: an hour beyond Int64 crashed the rollup path
        ]
        let filters = [
            "session", "model", "provider", "api_key", "outcome", "status", "q", "tag", "from", "to", "cursor", "limit",
            "group_by", "series", "check",
        ]
        _ = try await Tap.run { tap in
            try await tap.makeHistory()
            let before = try tap.app.recorder.store.callCount()
            for attack in attacks {
                let value = attack.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? attack
                for filter in filters {
                    for endpoint in ["/api/requests", "/api/sessions", "/api/cost", "/api/stats"] {
                        let answer = try await tap.api("\(endpoint)?\(filter)=\(value)")
                        #expect((200..<500).contains(answer.status), "\(endpoint) \(filter)=\(attack.prefix(30))")
                        #expect(answer.json != nil)
                    }
                }
                for path in ["/api/requests/", "/api/sessions/", "/api/requests/%@/raw", "/assets/"] {
                    let url = path.contains("%@") ? path.replacingOccurrences(of: "%@", with: value) : path + value
                    let answer = try await tap.api(url)
                    #expect([400, 404, 414, 431].contains(answer.status), "\(url.prefix(60)) → \(answer.status)")
                    #expect(!answer.body.contains("root:"))
                }
                // The dashboard's view URLs serve its one page whatever the id; the page reads the API.
                for path in ["/calls/", "/sessions/"] {
                    let answer = try await tap.api(path + value)
                    #expect(answer.status == 200 && answer.body.contains("<html"))
                    #expect(!answer.body.contains("root:"))
                }
            }
            #expect(try tap.app.recorder.store.callCount() == before)
            #expect(try tap.app.recorder.store.integrityCheck() == "ok")
        }
    }
}
