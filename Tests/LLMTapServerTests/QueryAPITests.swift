import AsyncHTTPClient
import Foundation
import LLMTapCore
@testable import LLMTapServer
import LLMTapStore
import Logging
import LLMTapTestSupport
import NIOCore
import Testing

extension Tap {
    /// GETs a query API path; the status and the body parsed as JSON.
    func api(_ path: String, token: String? = nil) async throws -> (status: Int, json: JSONValue?, body: String) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(apiPort)\(path)")
        if let token { request.headers.add(name: "authorization", value: "Bearer \(token)") }
        let response = try await client.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 16 << 20)
        return (Int(response.status.code), JSONValue.parse(body.readableBytesView), String(buffer: body))
    }

    /// Makes the calls the query tests look at: a two-turn auto-threaded conversation tagged
    /// team=search, a streamed call in an explicit session, a failed call, an unpriced model.
    func makeHistory() async throws {
        let turn1 = #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Capital of France?"}]}"#
        _ = await Tap.read(try await post(body: turn1, headers: [("X-Tap-Meta-Team", "search")]))
        let turn2 = #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Capital of France?"},{"role":"assistant","content":"Paris is the capital of France."},{"role":"user","content":"And Italy?"}]}"#
        _ = await Tap.read(try await post(body: turn2, headers: [("X-Tap-Meta-Team", "search")]))
        _ = await Tap.read(try await post(body: WireSamples.request(stream: true), headers: [("X-Session-Id", "s-explicit")]))
        _ = await Tap.read(try await post(body: WireSamples.request(model: "http-500", stream: false)))
        _ = await Tap.read(try await post(body: WireSamples.request(model: "usage-every-chunk", stream: true)))
        #expect(await eventually { app.recorder.stats.written >= 5 })
    }
}

struct QueryAPITests {
    @Test func sessionsThreadAndPage() async throws {
        _ = try await Tap.run { tap in
            try await tap.makeHistory()
            let all = try await tap.api("/api/sessions")
            #expect(all.status == 200)
            let sessions = try #require(all.json?["sessions"]?.arrayValue)
            #expect(sessions.count == 4)  // the conversation, s-explicit, the failed call, the unpriced call
            let conversation = try #require(sessions.first { $0["requests"] == .int(2) })
            #expect(conversation["models"] == .array([.string("gpt-4o-mini-2024-07-18")]))
            #expect(conversation["input_tokens"] == .int(4096))

            // pages of one, following next_cursor, give the same sessions in the same order
            var seen: [JSONValue] = []
            var cursor: String?
            repeat {
                let page = try await tap.api("/api/sessions?limit=1" + (cursor.map { "&cursor=\($0)" } ?? ""))
                seen += page.json?["sessions"]?.arrayValue ?? []
                cursor = page.json?["next_cursor"]?.stringValue
            } while cursor != nil
            #expect(seen.map { $0["id"] } == sessions.map { $0["id"] })

            let id = try #require(conversation["id"]?.stringValue)
            let detail = try await tap.api("/api/sessions/\(id)")
            let calls = try #require(detail.json?["calls"]?.arrayValue)
            #expect(calls.count == 2)
            #expect(calls.map { $0["chat_input"] } == [.string("Capital of France?"), .string("And Italy?")])
            #expect(calls[1]["session_source"] == .string("auto"))
            #expect(calls[1]["context"]?.arrayValue?.count == 3)
            #expect(calls[0]["metrics"]?["cost_usd"] != JSONValue.null)
            // The answer put together from stored message text is the document the records give.
            let (summary, records) = try #require(try tap.app.recorder.store.session(id: id))
            #expect(detail.json == APIJSON.session(summary, calls: records))

            let tagged = try await tap.api("/api/sessions?tag=team:search")
            #expect(tagged.json?["sessions"]?.arrayValue?.map { $0["id"] } == [.string(id)])
            let searched = try await tap.api("/api/sessions?q=Italy")
            #expect(searched.json?["sessions"]?.arrayValue?.map { $0["id"] } == [.string(id)])
            #expect(try await tap.api("/api/sessions/nope").status == 404)
        }
    }

    @Test func requestsFilterAndGiveBackExactBytes() async throws {
        _ = try await Tap.run { tap in
            try await tap.makeHistory()
            let all = try #require(try await tap.api("/api/requests").json?["requests"]?.arrayValue)
            #expect(all.count == 5)
            let failed = try await tap.api("/api/requests?outcome=upstream_error")
            #expect(failed.json?["requests"]?.arrayValue?.count == 1)
            #expect(try await tap.api("/api/requests?status=500").json?["requests"]?.arrayValue?.count == 1)
            #expect(try await tap.api("/api/requests?session_id=s-explicit").json?["requests"]?.arrayValue?.count == 1)
            #expect(try await tap.api("/api/requests?tag=team").json?["requests"]?.arrayValue?.count == 2)
            let repeated = try await tap.api("/api/requests?check=usage_repeated")
            #expect(repeated.json?["requests"]?.arrayValue?.map { $0["usage_checks"] }
                == [.array([.string("usage_repeated"), .string("cost_unknown")])])
            #expect(try await tap.api("/api/requests?check=cost_unknown").json?["requests"]?.arrayValue?.count == 1)
            #expect(try await tap.api("/api/requests?check=usage_missing").json?["requests"]?.arrayValue?.count == 0)

            let streamed = try #require(all.first { $0["session_id"] == .string("s-explicit") })
            let id = try #require(streamed["id"]?.stringValue)
            let detail = try await tap.api("/api/requests/\(id)")
            #expect(detail.json?["parameters"]?["temperature"] == .double(0.2))
            #expect(detail.json?["chat_output"] == .string("Hello there!"))

            let raw = try await tap.api("/api/requests/\(id)/raw")
            let request = Data(base64Encoded: raw.json?["request_base64"]?.stringValue ?? "")
            let response = Data(base64Encoded: raw.json?["response_base64"]?.stringValue ?? "")
            #expect(request == Data(WireSamples.request(stream: true).utf8))
            #expect(response == Data(WireSamples.text.bytes(includeUsage: true).utf8))
            let exact = try await tap.api("/api/requests/\(id)/raw/response")
            #expect(exact.body == WireSamples.text.bytes(includeUsage: true))
            #expect(try await tap.api("/api/requests/\(id)/raw/other").status == 404)
        }
    }

    @Test func costGroupsAndNeverCountsUnpricedAsFree() async throws {
        _ = try await Tap.run { tap in
            try await tap.makeHistory()
            let byModel = try #require(try await tap.api("/api/cost?group_by=model").json)
            // two non-stream completions (2048 in, 1024 cached, 8 out) and one stream (12 in, 4 out), gpt-4o-mini
            let expected = (2 * (153_600 + 76_800 + 4_800) + 12 * 150 + 4 * 600)
            #expect(byModel["total_cost_usd"] == .double(Double(expected) / 1e9))
            #expect(byModel["requests"] == .int(5))
            let unpriced = try #require(byModel["unpriced"]?.arrayValue)
            // the harness names the default upstream "local" (a provider with the same URL)
            #expect(unpriced.map { $0["model"] } == [.string("meta-llama/Llama-3.1-8B-Instruct @ local")])
            #expect(unpriced.first?["input_tokens"] == .int(9))
            let byTag = try #require(try await tap.api("/api/cost?group_by=tag:team").json?["groups"]?.arrayValue)
            #expect(byTag.first?["key"] == .string("search"))
            #expect(byTag.first?["requests"] == .int(2))
            let byDay = try #require(try await tap.api("/api/cost?group_by=day").json?["groups"]?.arrayValue)
            #expect(byDay.count == 1)
            let split = try #require(try await tap.api("/api/cost?group_by=day&series=model").json?["groups"]?.arrayValue)
            #expect(split.count == 1 && split.first?["cost_usd"] == byDay.first?["cost_usd"])
            let series = try #require(split.first?["series"]?.arrayValue)
            #expect(series.first?["key"] == .string("gpt-4o-mini-2024-07-18"))
            #expect(series.first?["cost_usd"] == .double(Double(expected) / 1e9))
            let future = try #require(try await tap.api("/api/cost?from=2099-01-01").json)
            #expect(future["requests"] == .int(0))
        }
    }

    @Test func statsPerModel() async throws {
        _ = try await Tap.run { tap in
            try await tap.makeHistory()
            let models = try #require(try await tap.api("/api/stats").json?["models"]?.arrayValue)
            let mini = try #require(models.first { $0["model"] == .string("gpt-4o-mini-2024-07-18") })
            #expect(mini["requests"] == .int(3))
            guard case .double(let p50)? = mini["latency_s"]?["p50"], case .double(let p99)? = mini["latency_s"]?["p99"] else {
                Issue.record("no latency percentiles")
                return
            }
            #expect(p50 > 0 && p50 <= p99)
            #expect(mini["ttft_s"]?["p50"] != nil)
        }
    }

    @Test func prometheusMetrics() async throws {
        _ = try await Tap.run { tap in
            try await tap.makeHistory()
            let metrics = try await tap.api("/metrics")
            #expect(metrics.status == 200)
            let text = metrics.body
            #expect(text.contains(#"llmtap_calls_total{provider="local",model="gpt-4o-mini-2024-07-18",outcome="ok",status="200"} 3"#))
            #expect(text.contains(#"outcome="upstream_error",status="500"} 1"#))
            #expect(text.contains(#"llmtap_tokens_total{provider="local",model="gpt-4o-mini-2024-07-18",direction="input"} 4108"#))
            #expect(text.contains("llmtap_call_latency_seconds_bucket"))
            #expect(text.contains(#"llmtap_unpriced_calls_total{provider="local",model="meta-llama/Llama-3.1-8B-Instruct"} 1"#))
            #expect(text.contains("llmtap_recorder_written_calls 5"))
            #expect(text.contains("llmtap_recorder_dropped_calls 0"))
            // jemalloc's own counts: what llmtap holds, within what the allocator keeps resident.
            func gauge(_ name: String) -> Double? {
                text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { $0.split(separator: " ").last }
                    .flatMap { Double($0) }
            }
            let allocated = try #require(gauge("llmtap_allocator_allocated_bytes"))
            let resident = try #require(gauge("llmtap_allocator_resident_bytes"))
            #expect(allocated > Double(1 << 20) && resident >= allocated, "allocated \(allocated), resident \(resident)")
            #expect(!text.contains("session"))  // never a session id as a label
        }
    }

    /// `llmtap_overhead_seconds` counts llmtap's own time in a call, not the upstream's: a stream
    /// whose upstream pauses 60 ms before each event adds far less than that to the histogram.
    @Test func overheadHistogramLeavesOutTheUpstream() async throws {
        _ = try await Tap.run { tap in
            let body = WireSamples.request(model: "paced", stream: true)
            _ = await Tap.read(try await tap.post(body: body))
            _ = await Tap.read(try await tap.post(body: WireSamples.request(stream: false)))
            let text = try await tap.api("/metrics").body
            /// The sum of a metric's samples over all its label sets.
            func value(_ name: String) -> Double {
                text.split(separator: "\n").filter { $0.hasPrefix(name + " ") || $0.hasPrefix(name + "{") }
                    .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
            }
            #expect(value("llmtap_overhead_seconds_count") == 2)
            let overhead = value("llmtap_overhead_seconds_sum")
            #expect(overhead > 0 && overhead < 0.05, "overhead \(overhead) s for two calls")
            #expect(value("llmtap_call_latency_seconds_sum") >= 0.3)  // the upstream's pauses are in the calls' latency
        }
    }

    @Test func eventsStreamEachNewCall() async throws {
        _ = try await Tap.run { tap in
            let request = HTTPClientRequest(url: "http://127.0.0.1:\(tap.apiPort)/api/events")
            let response = try await tap.client.execute(request, timeout: .seconds(10))
            #expect(response.headers.first(name: "content-type") == "text/event-stream")
            var events = response.body.makeAsyncIterator()
            _ = try await events.next()  // the opening comment: subscribed
            _ = await Tap.read(try await tap.post(body: WireSamples.request(stream: false), headers: [("X-Session-Id", "live")]))
            var text = ""
            while !text.contains("\n\n"), let chunk = try await events.next() { text += String(buffer: chunk) }
            #expect(text.hasPrefix("id: "))
            #expect(text.contains("event: call\n"))
            let data = text.split(separator: "\n").first { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
            let call = JSONValue.parse(Array((data ?? "").utf8))
            #expect(call?["session_id"] == .string("live"))
            #expect(call?["metrics"]?["input_tokens"] == .int(2048))
        }
    }

    @Test(arguments: [
        "/api/requests?limit=0", "/api/requests?limit=ten", "/api/requests?from=yesterday", "/api/cost?group_by=color",
        "/api/requests?outcome=maybe", "/api/requests?status=999", "/api/requests?check=suspicious", "/api/sessions?cursor=garbage!",
        "/api/sessions?q=%22%3B%20DROP%20TABLE%20calls%3B--", "/api/cost?group_by=day&series=color",
        "/api/cost?group_by=tag:team&series=model",
    ])
    func badParametersAre4xxJSON(path: String) async throws {
        _ = try await Tap.run { tap in
            let answer = try await tap.api(path)
            if path.contains("DROP") {
                #expect(answer.status == 200)  // just words to search for
                #expect(try await tap.api("/api/requests").status == 200)
            } else {
                #expect(answer.status == 400)
                #expect(answer.json?["error"]?["type"] == .string("invalid_parameter"))
                #expect(answer.json?["error"]?["message"]?.stringValue?.isEmpty == false)
            }
        }
    }

    @Test func unknownPathsAre404JSON() async throws {
        _ = try await Tap.run { tap in
            let answer = try await tap.api("/api/nothing")
            #expect(answer.status == 404)
            #expect(answer.json?["error"]?["type"] == .string("not_found"))
        }
    }

    @Test func apiTokenGuardsEverythingButHealth() async throws {
        _ = try await Tap.run(configure: { $0.apiToken = "t0ken" }) { tap in
            #expect(try await tap.api("/healthz").status == 200)
            let denied = try await tap.api("/api/sessions")
            #expect(denied.status == 401)
            #expect(denied.json?["error"]?["type"] == .string("unauthorized"))
            #expect(try await tap.api("/api/sessions", token: "wrong").status == 401)
            #expect(try await tap.api("/api/sessions", token: "t0ken").status == 200)
        }
    }

    /// The OpenAPI document is the contract: every documented path answers with a documented
    /// status, every JSON answer validates against the documented schema, and every route the
    /// server has is documented.
    @Test func openAPIDocumentMatchesTheRoutes() async throws {
        _ = try await Tap.run { tap in
            try await tap.makeHistory()
            let document = try #require(try await tap.api("/openapi.json").json)
            #expect(document["openapi"] == .string("3.1.0"))
            let validator = SchemaValidator(document: document)
            let paths = try #require(document["paths"]?.objectValue)
            let callID = try #require(try await tap.api("/api/requests?limit=1").json?["requests"]?[0]?["id"]?.stringValue)
            let sessionID = try #require(try await tap.api("/api/sessions").json?["sessions"]?[0]?["id"]?.stringValue)
            var probes: [(documented: String, concrete: String)] = []
            for path in paths.keys where path != "/api/events" {
                let concrete = path.replacingOccurrences(of: "{id}", with: path.hasPrefix("/api/sessions") ? sessionID : callID)
                    .replacingOccurrences(of: "{part}", with: "request").replacingOccurrences(of: "{name}", with: "app.js")
                probes.append((path, concrete))
            }
            // Query variants whose answers have other shapes worth validating too.
            probes += [
                ("/api/cost", "/api/cost?group_by=day"), ("/api/cost", "/api/cost?group_by=tag:team"),
                ("/api/cost", "/api/cost?group_by=day&series=model"),
                ("/api/cost", "/api/cost?group_by=session&from=0"), ("/api/requests", "/api/requests?limit=2"),
                ("/api/sessions", "/api/sessions?q=Italy"), ("/api/requests/{id}", "/api/requests/nope"),
                ("/api/sessions", "/api/sessions?limit=0"),
            ]
            for (path, concrete) in probes {
                let answer = try await tap.api(concrete)
                let responses = paths[path]?["get"]?["responses"]
                let documented = responses?.objectValue?.keys.compactMap(Int.init) ?? []
                #expect(documented.contains(answer.status), "\(concrete) answered \(answer.status)")
                guard let schema = responses?[String(answer.status)]?["content"]?["application/json"]?["schema"] else { continue }
                let json = try #require(answer.json, "\(concrete) is not JSON")
                let problems = validator.problems(json, schema)
                #expect(problems.isEmpty, "\(concrete): \(problems.prefix(5).joined(separator: "; "))")
            }
        }
    }

    /// Keyset cursors: a walk through the pages sees every call (and every session) that
    /// existed when it started exactly once, while new calls keep arriving.
    @Test func pagesWalkEveryRowOnceWhileCallsArrive() async throws {
        _ = try await Tap.run { tap in
            for n in 0..<40 {
                let response = try await tap.post(
                    body: WireSamples.request(model: "m\(n % 3)", stream: false), headers: [("X-Session-Id", "old-\(n % 9)")])
                _ = await Tap.read(response)
            }
            #expect(await eventually { tap.app.recorder.stats.written >= 40 })
            let existing = try #require(try await tap.api("/api/requests?limit=100").json?["requests"]?.arrayValue)
                .compactMap { $0["id"]?.stringValue }
            #expect(existing.count == 40)
            let writer = Task {
                for n in 0..<25 {
                    let response = try await tap.post(
                        body: WireSamples.request(stream: false), headers: [("X-Session-Id", "new-\(n)")])
                    _ = await Tap.read(response)
                }
            }
            for (path, key) in [("/api/requests?limit=7", "requests"), ("/api/sessions?limit=2", "sessions")] {
                var seen: [String] = []
                var cursor: String?
                repeat {
                    let page = try await tap.api(path + (cursor.map { "&cursor=\($0)" } ?? ""))
                    seen += (page.json?[key]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
                    cursor = page.json?["next_cursor"]?.stringValue
                    try await Task.sleep(for: .milliseconds(3))
                } while cursor != nil
                #expect(Set(seen).count == seen.count, "\(key): a row seen twice")
                let wanted = key == "requests" ? Set(existing) : Set((0..<9).map { "old-\($0)" })
                #expect(wanted.isSubset(of: Set(seen)), "\(key): missing \(wanted.subtracting(seen))")
            }
            try await writer.value
        }
    }

    /// The dashboard's pages and assets come from the binary, on every view's URL, without the
    /// API token (they hold no data); the data behind them still needs it.
    @Test func dashboardIsServedOnEveryViewURL() async throws {
        _ = try await Tap.run(configure: { $0.apiToken = "t0ken" }) { tap in
            for path in ["/", "/sessions", "/sessions/some-id", "/calls/0193", "/live"] {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(tap.apiPort)\(path)")
                request.method = .GET
                let response = try await tap.client.execute(request, timeout: .seconds(5))
                #expect(response.status == .ok, "\(path)")
                #expect(response.headers.first(name: "content-type")?.hasPrefix("text/html") == true)
                #expect(String(buffer: try await response.body.collect(upTo: 1 << 20)).contains("/assets/app.js"))
            }
            let script = try await tap.client.execute(
                HTTPClientRequest(url: "http://127.0.0.1:\(tap.apiPort)/assets/app.js"), timeout: .seconds(5))
            #expect(script.headers.first(name: "content-type")?.hasPrefix("text/javascript") == true)
            #expect(String(buffer: try await script.body.collect(upTo: 1 << 20)).contains("/api/sessions"))
            #expect(try await tap.api("/assets/nothing.js").status == 404)
            #expect(try await tap.api("/api/sessions").status == 401)
        }
    }

    @Test func everyRouteOfTheServerIsDocumented() async throws {
        let directory = try TestFiles.directory()
        let path = directory.appendingPathComponent("llmtap.sqlite").path
        let recorder = Recorder(store: try Store(path: path), spool: Spool(path: path + ".spool"), logger: Logger(label: "test"))
        let router = buildQueryRouter(recorder: recorder, metrics: LLMTapMetrics(recorder: recorder), apiToken: nil)
        let served = Set(
            router.routes.map { route in
                let parts = "\(route.path)".split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
                return "\(route.method) /" + parts.joined(separator: "/")
            })
        let document = try #require(JSONValue.parse(Array(OpenAPIDocument.text.utf8)))
        let documented = Set(
            (document["paths"]?.objectValue ?? [:]).flatMap { path, item in
                (item.objectValue ?? [:]).keys.map { "\($0.uppercased()) \(path)" }
            })
        #expect(!served.isEmpty)
        #expect(served == documented, "served only: \(served.subtracting(documented)); documented only: \(documented.subtracting(served))")
    }
}

extension JSONValue {
    subscript(index: Int) -> JSONValue? {
        guard let items = arrayValue, items.indices.contains(index) else { return nil }
        return items[index]
    }
}
