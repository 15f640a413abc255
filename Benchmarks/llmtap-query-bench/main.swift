// llmtap-query-bench: how fast the query API answers over a large history.
//
//   swift run -c release llmtap-query-bench [calls] [database-path]
//
// Fills the database (if it holds fewer calls) with realistic traffic through the real
// Recorder — multi-turn sessions with growing contexts, one of 200 turns, six models
// (one unpriced), five keys, tags, streams — spread over 30 days, then starts the real
// query API on an ephemeral port and times each endpoint over HTTP (30 runs; p50 and max).
import AsyncHTTPClient
import Foundation
import LLMTapCore
import LLMTapServer
import LLMTapStore
import Logging
import NIOCore
import ServiceLifecycle

let arguments = CommandLine.arguments
let target = arguments.count > 1 ? Int(arguments[1]) ?? 1_000_000 : 1_000_000
let path = arguments.count > 2 ? arguments[2] : FileManager.default.temporaryDirectory.appendingPathComponent("llmtap-query-bench.sqlite").path

let logger = {
    var logger = Logger(label: "llmtap-query-bench")
    logger.logLevel = .warning
    return logger
}()

let models: [(provider: String, model: String)] = [
    ("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-3-5-haiku"), ("gemini", "gemini-2.0-flash"), ("ollama", "llama3.2"),
]
let pricing = try PricingTable.bundled()
let start = 1_760_000_000.0
let span = 30 * 86_400.0
let system: JSONValue = .object(["role": .string("system"), "content": .string("You are a careful assistant. Answer briefly.")])

/// Call `turn` of session `session`: the context is every earlier turn and its answer.
func record(session: Int, turn: Int, at time: Double) -> CallRecord {
    let (provider, model) = models[session % models.count]
    var r = CallRecord(createdAt: time, provider: provider, endpoint: "/v1/chat/completions", apiFormat: "openai.chat")
    r.model = model
    r.responseModel = model
    r.sessionID = "bench-\(session)"
    r.sessionSource = .header
    r.keyFingerprint = "key\(session % 5)"
    r.isStream = session % 2 == 0
    if session % 3 == 0 { r.tags = ["team": session % 2 == 0 ? "search" : "support"] }
    var messages = [system]
    for t in 0...turn {
        messages.append(.object(["role": .string("user"), "content": .string("Session \(session), question \(t): what about topic \(t * 7 % 13)?")]))
        if t < turn { messages.append(.object(["role": .string("assistant"), "content": .string("Answer \(t) for session \(session).")])) }
    }
    r.context = .array(messages)
    r.chatInput = "Session \(session), question \(turn): what about topic \(turn * 7 % 13)?"
    r.output = "Answer \(turn) for session \(session)."
    r.parameters = .object(["temperature": .double(0.2), "max_tokens": .int(512)])
    r.usage = Usage(inputTokens: Int64(40 + turn * 30), outputTokens: Int64(8 + turn % 50), source: .upstream)
    r.costNanoUSD = pricing.cost(provider: provider, model: model, usage: r.usage)?.rawValue
    r.latencyS = 0.4 + Double(turn % 10) / 10
    r.ttftS = 0.15
    r.itlS = 0.012
    r.tokensPerSecond = 60
    r.requestBody = Array(#"{"model":"\#(model)","messages":\#(r.context!.canonicalText)}"#.utf8)
    r.responseBody = Array(#"{"choices":[{"message":{"content":"\#(r.output!)"}}]}"#.utf8)
    return r
}

/// The calls in creation order: sessions of 1–12 turns started one after another, session 1 with 200.
func fill(_ store: Store, from existing: Int) async throws {
    var configuration = Recorder.Configuration()
    configuration.capacity = 50_000
    let recorder = Recorder(store: store, spool: Spool(path: path + ".spool"), configuration: configuration, logger: logger)
    let runner = Task { try await recorder.run() }
    var calls: [(session: Int, turn: Int)] = []
    var session = 0
    while calls.count < target {
        let turns = session == 1 ? 200 : 1 + (session * 7919) % 12
        for turn in 0..<turns where calls.count < target { calls.append((session, turn)) }
        session += 1
    }
    let clock = ContinuousClock()
    let began = clock.now
    var submitted = existing
    while submitted < calls.count {
        let end = min(submitted + 20_000, calls.count)
        for n in submitted..<end {
            let time = start + span * Double(n) / Double(target)
            recorder.submit(record(session: calls[n].session, turn: calls[n].turn, at: time))
        }
        while recorder.stats.written < end - existing { try await Task.sleep(for: .milliseconds(5)) }
        submitted = end
        let rate = Double(submitted - existing) / max((clock.now - began).seconds, 0.001)
        if submitted % 100_000 == 0 || submitted == calls.count {
            print("filled \(submitted)/\(calls.count) (\(Int(rate)) calls/s)")
        }
    }
    runner.cancel()
    print("")
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

let store = try Store(path: path)
let existing = try store.count(filter: CallFilter())
if existing < target { try await fill(store, from: existing) }
let total = try store.count(filter: CallFilter())
let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
print("database         \(total) calls, \(bytes / 1_048_576) MiB")

var configuration = LLMTapConfiguration()
configuration.databasePath = path
configuration.port = 0
configuration.apiPort = 0
let (ports, portsContinuation) = AsyncStream<(Listener, Int)>.makeStream()
let app = try buildApplication(configuration, logger: logger) { listener, port in portsContinuation.yield((listener, port)) }
let group = ServiceGroup(configuration: .init(services: app.services, logger: logger))
let server = Task { try await group.run() }
var apiPort = 0
for await (listener, port) in ports where listener == .api {
    apiPort = port
    break
}

let client = HTTPClient(eventLoopGroupProvider: .singleton)
let clock = ContinuousClock()
func time(_ name: String, _ path: String, runs: Int = 30) async throws {
    var samples: [Double] = []
    var size = 0
    for _ in 0..<runs {
        let began = clock.now
        let response = try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(apiPort)\(path)"), timeout: .seconds(300))
        let body = try await response.body.collect(upTo: 64 << 20)
        samples.append((clock.now - began).seconds * 1000)
        size = body.readableBytes
        guard response.status == .ok else { throw CancellationError() }
    }
    samples.sort()
    let line = name.padding(toLength: 44, withPad: " ", startingAt: 0)
    print("\(line) p50 \(String(format: "%7.2f", samples[samples.count / 2])) ms   max \(String(format: "%7.2f", samples.last!)) ms   \(size) bytes")
}

let weekFrom = Int(start + 10 * 86_400 + 1234)
let weekTo = weekFrom + 7 * 86_400
try await time("/api/cost?group_by=model", "/api/cost?group_by=model")
try await time("/api/cost?group_by=day (7 days, unaligned)", "/api/cost?group_by=day&from=\(weekFrom)&to=\(weekTo)")
try await time("/api/cost?group_by=api_key", "/api/cost?group_by=api_key")
try await time("/api/cost?group_by=tag:team", "/api/cost?group_by=tag:team", runs: 5)
try await time("/api/sessions (first page)", "/api/sessions")
try await time("/api/sessions?cursor (second page)", "/api/sessions?limit=50&cursor=" + (try store.sessions(filter: CallFilter(), limit: 50, cursor: nil).nextCursor ?? ""))
try await time("/api/sessions/{id} (200 turns)", "/api/sessions/bench-1")
do {  // the same session read without HTTP and JSON: where the time goes
    var samples: [Double] = []
    for _ in 0..<30 {
        let began = clock.now
        _ = try store.sessionWithContextText(id: "bench-1")
        samples.append((clock.now - began).seconds * 1000)
    }
    samples.sort()
    print("  of which reading the 200 turns (Store)     p50 \(String(format: "%7.2f", samples[15])) ms")
    let (summary, calls, contexts) = try store.sessionWithContextText(id: "bench-1")!
    var encoding: [Double] = []
    for _ in 0..<30 {
        let began = clock.now
        _ = APIJSON.session(summary, calls: calls, contexts: contexts)
        encoding.append((clock.now - began).seconds * 1000)
    }
    encoding.sort()
    print("  of which encoding its JSON                 p50 \(String(format: "%7.2f", encoding[15])) ms")
}
try await time("/api/requests (first page)", "/api/requests")
try await time("/api/requests?model=gpt-4o", "/api/requests?model=gpt-4o")
try await time("/api/requests?q=topic (FTS)", "/api/requests?q=topic", runs: 5)
try await time("/api/stats (1 day)", "/api/stats?from=\(weekFrom)&to=\(weekFrom + 86_400)", runs: 5)

try await client.shutdown().get()
await group.triggerGracefulShutdown()
_ = try? await server.value
