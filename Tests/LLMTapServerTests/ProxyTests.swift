import AsyncHTTPClient
import Foundation
import LLMTapCore
import LLMTapServer
import LLMTapStore
import LLMTapTestSupport
import NIOCore
import Testing

/// Through llmtap, the client receives exactly what the upstream sent, and the
/// database holds a correct row (and the exact bytes) for the call.
struct ProxyTests {
    /// The body's session id (`session_id`, `metadata.session_id`) names the session when no
    /// header does; a header wins. The event loop sends the call before the body is parsed.
    @Test func aSessionIdInTheBodyIsRecordedUnlessAHeaderGivesOne() async throws {
        let inBody = WireSamples.request(stream: false, extra: #","metadata":{"session_id":"from-body"}"#)
        let topLevel = WireSamples.request(stream: true, extra: #","session_id":"top-level""#)
        let store = try await Tap.run { tap in
            let sent: [(String, [(String, String)])] = [(inBody, []), (topLevel, []), (inBody, [("X-Session-Id", "from-header")])]
            for (body, headers) in sent {
                let response = try await tap.post(body: body, headers: headers)
                #expect(await Tap.read(response).clean)
            }
        }
        let calls = try store.calls()
        #expect(calls.map(\.sessionID) == ["from-body", "top-level", "from-header"])
        #expect(calls.map(\.sessionSource) == [.body, .body, .header])
        #expect(calls.map(\.isStream) == [false, true, false])
        #expect(calls[1].usageInjected && calls[1].parameters?["session_id"] == .string("top-level"))
    }

    @Test func nonStreamingCallPassesThroughAndIsRecorded() async throws {
        let request = WireSamples.request(stream: false)
        let store = try await Tap.run { tap in
            let response = try await tap.post(
                body: request,
                headers: [("X-Session-Id", "conv-42"), ("X-Tap-Meta-Team", "search"), ("X-Tap-Session", "ignored")])
            #expect(response.status == .ok)
            #expect(response.headers.first(name: "content-type") == "application/json")
            #expect(await Tap.read(response).bytes == WireSamples.completion)

            let seen = try #require(tap.upstream.requests.last)
            #expect(seen.body == Array(request.utf8))  // forwarded unchanged (not a stream: nothing injected)
            #expect(seen.header("authorization") == "Bearer \(Tap.secretKey)")
            #expect(seen.header("x-session-id") == "conv-42")
            #expect(seen.header("x-tap-meta-team") == nil)
            #expect(seen.header("x-tap-session") == nil)
            #expect(seen.path == "/v1/chat/completions")
            #expect(seen.authority == "127.0.0.1:\(tap.upstreamPort)")  // set for the upstream, not the client's
        }
        let call = try #require(try store.calls().first)
        #expect(try store.callCount() == 1)
        #expect(call.outcome == .ok)
        #expect(call.httpStatus == 200)
        #expect(call.model == "gpt-4o-mini")
        #expect(call.responseModel == "gpt-4o-mini-2024-07-18")
        #expect(call.output == "Paris is the capital of France.")
        #expect(call.chatInput == "Capital of France?")
        #expect(call.context?.arrayValue?.first?["content"] == .string("You are terse."))
        #expect(call.parameters?["temperature"] == .double(0.2))
        #expect(call.usage == Usage(inputTokens: 2048, outputTokens: 8, totalTokens: 2056, cachedInputTokens: 1024, reasoningTokens: 0))
        #expect(call.costNanoUSD == Int64(153_600 + 76_800 + 4_800))
        #expect(call.pricingVersion != nil)
        #expect(call.sessionID == "conv-42" && call.sessionSource == .header)
        #expect(call.tags == ["team": "search"])
        #expect(call.keyFingerprint?.count == 16)
        #expect(call.clientAddress == "127.0.0.1")
        #expect(!call.isStream)
        #expect(call.latencyS > 0 && call.ttftS != nil)

        let full = try #require(try store.call(id: call.id))
        #expect(full.requestBody == Array(request.utf8))
        #expect(full.responseBody == Array(WireSamples.completion.utf8))
    }

    @Test func streamWithoutUsageGetsExactCountsAndTheClientSeesNoDifference() async throws {
        let store = try await Tap.run { tap in
            let response = try await tap.post(body: WireSamples.request(stream: true))
            #expect(response.headers.first(name: "content-type") == "text/event-stream; charset=utf-8")
            #expect(await Tap.read(response).bytes == WireSamples.text.bytes(includeUsage: false))
            let seen = try #require(tap.upstream.requests.last)
            #expect(String(decoding: seen.body, as: UTF8.self).hasPrefix(#"{"stream_options":{"include_usage":true},"#))
        }
        let call = try #require(try store.calls().first)
        #expect(call.usageInjected)
        #expect(call.isStream)
        #expect(call.output == "Hello there!")
        #expect(call.finishReason == "stop")
        #expect(call.usage?.inputTokens == 12 && call.usage?.outputTokens == 4)
        #expect(call.usage?.source == .upstream)
        #expect(call.costNanoUSD == Int64(12 * 150 + 4 * 600))
        #expect(call.ttftS != nil && call.itlS != nil && call.itlMaxS != nil)
        #expect(call.ttftS! <= call.latencyS)
        // The stored response is the stream as received from the upstream.
        let full = try #require(try store.call(id: call.id))
        #expect(String(decoding: full.responseBody, as: UTF8.self) == WireSamples.text.bytes(includeUsage: true))
    }

    @Test func streamThatAskedForUsageIsUntouched() async throws {
        let store = try await Tap.run { tap in
            let body = WireSamples.request(stream: true, extra: #","stream_options":{"include_usage":true}"#)
            let response = try await tap.post(body: body)
            #expect(await Tap.read(response).bytes == WireSamples.text.bytes(includeUsage: true))
            #expect(tap.upstream.requests.last?.body == Array(body.utf8))
        }
        let call = try #require(try store.calls().first)
        #expect(!call.usageInjected)
        #expect(call.usage?.outputTokens == 4)
    }

    @Test func withoutInjectionUsageIsEstimatedAndMarked() async throws {
        let store = try await Tap.run(configure: { $0.injectUsage = false }) { tap in
            let body = WireSamples.request(stream: true)
            let response = try await tap.post(body: body)
            #expect(await Tap.read(response).bytes == WireSamples.text.bytes(includeUsage: false))
            #expect(tap.upstream.requests.last?.body == Array(body.utf8))
        }
        let call = try #require(try store.calls().first)
        #expect(call.usage?.source == .estimated)
        #expect(call.usage?.outputTokens == TokenEstimator.estimate("Hello there!"))
        #expect(call.usageChecks == [.usageMissing, .usageEstimated])
        #expect(call.usage?.inputTokens == TokenEstimator.estimate("You are terse.\nCapital of France?"))
    }

    @Test(arguments: [
        ("tools", WireSamples.toolCall), ("usage-every-chunk", WireSamples.usageEveryChunk),
        ("error-mid-stream", WireSamples.errorMidStream),
    ])
    func otherStreamsPassThroughByteForByte(model: String, script: StreamScript) async throws {
        let store = try await Tap.run { tap in
            let response = try await tap.post(body: WireSamples.request(model: model, stream: true))
            #expect(await Tap.read(response).bytes == script.bytes(includeUsage: false))
        }
        let call = try #require(try store.calls().first)
        switch model {
        case "tools":
            #expect(call.toolCalls?.arrayValue?.first?["function"]?["arguments"] == .string(#"{"location": "Paris"}"#))
            #expect(call.finishReason == "tool_calls")
            #expect(call.usage?.inputTokens == 80 && call.usage?.source == .upstream)
            #expect(call.outcome == .ok)
        case "usage-every-chunk":
            #expect(call.usage?.outputTokens == 3)
            #expect(call.usageRepeated)
            #expect(call.costNanoUSD == nil)  // an unpriced model: unknown, never 0
        default:
            #expect(call.outcome == .upstreamError)
            #expect(call.errorType == "server_error")
            #expect(call.output == "Par")
        }
    }

    /// The tee never buffers: the client holds the first chunks while the upstream is still waiting to send the rest.
    @Test func chunksReachTheClientBeforeTheUpstreamSendsTheNext() async throws {
        let store = try await Tap.run { tap in
            let response = try await tap.post(
                body: WireSamples.request(model: "slow", stream: true, extra: #","stream_options":{"include_usage":true}"#))
            let events = WireSamples.text.events(includeUsage: true)
            var iterator = response.body.makeAsyncIterator()
            var received = ""
            let expectedFirst = events[0] + events[1]
            while received.count < expectedFirst.count, let chunk = try await iterator.next() {
                received += String(buffer: chunk)  // the upstream is blocked on its gate meanwhile
            }
            #expect(received == expectedFirst)
            try await Task.sleep(for: .milliseconds(300))
            tap.upstream.openGate()
            while let chunk = try await iterator.next() { received += String(buffer: chunk) }
            #expect(received == WireSamples.text.bytes(includeUsage: true))
        }
        let call = try #require(try store.calls().first)
        #expect(call.outcome == .ok)
        #expect(call.output == "Hello there!")
        // The record times each event by the read that brought it (parsed later, off the event loop).
        #expect(call.ttftS! + 0.25 < call.latencyS, "ttft \(call.ttftS!) latency \(call.latencyS)")
        #expect(call.itlMaxS! >= 0.25)
    }

    @Test func upstreamErrorStatusPassesThroughAndIsRecorded() async throws {
        let store = try await Tap.run { tap in
            let response = try await tap.post(body: WireSamples.request(model: "http-500", stream: false))
            #expect(response.status == .internalServerError)
            #expect(await Tap.read(response).bytes == WireSamples.serverError)
        }
        let call = try #require(try store.calls().first)
        #expect(call.outcome == .upstreamError)
        #expect(call.httpStatus == 500)
        #expect(call.errorType == "server_error")
        #expect(call.usage == nil && call.costNanoUSD == nil)
    }

    @Test func gzipResponsesPassThroughEncodedAndAreParsedDecoded() async throws {
        let store = try await Tap.run { tap in
            let response = try await tap.post(
                body: WireSamples.request(model: "gzip", stream: false), headers: [("accept-encoding", "gzip, br, zstd")])
            #expect(response.headers.first(name: "content-encoding") == "gzip")
            var body = try await response.body.collect(upTo: 1 << 20)
            let plain = try body.decompress(with: .gzip())
            #expect(String(buffer: plain) == WireSamples.completion)
            // Accept-Encoding narrowed to what llmtap decodes.
            #expect(tap.upstream.requests.last?.header("accept-encoding") == "gzip")
        }
        let call = try #require(try store.calls().first)
        #expect(call.output == "Paris is the capital of France.")
        #expect(call.usage?.outputTokens == 8)
        let full = try #require(try store.call(id: call.id))
        #expect(full.responseContentEncoding == "gzip")
    }

    @Test func malformedBodyIsForwardedAsIsAndRecorded() async throws {
        let broken = #"{"model": "gpt-4o", "messages": [ oops"#
        let store = try await Tap.run { tap in
            let response = try await tap.post(body: broken)
            #expect(response.status == .ok)  // the upstream decides; the fake one answers anyway
            #expect(tap.upstream.requests.last?.body == Array(broken.utf8))
        }
        let call = try #require(try store.calls().first)
        #expect(call.model == nil)
        #expect(try store.call(id: call.id)?.requestBody == Array(broken.utf8))
    }

    @Test func noLogKeepsMetricsOnly() async throws {
        let store = try await Tap.run { tap in
            let response = try await tap.post(body: WireSamples.request(stream: false), headers: [("X-Tap-No-Log", "1")])
            _ = await Tap.read(response)
        }
        let call = try #require(try store.calls().first)
        #expect(call.noLog)
        #expect(call.output == nil && call.context == nil && call.chatInput == nil)
        #expect(call.usage?.inputTokens == 2048)
        #expect(try store.call(id: call.id)?.requestBody == [])
    }
}
