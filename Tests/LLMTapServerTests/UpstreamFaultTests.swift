import AsyncHTTPClient
import Crypto
import Foundation
import LLMTapCore
import LLMTapServer
import LLMTapStore
import LLMTapTestSupport
import NIOCore
import Testing

/// Upstreams that misbehave at the byte level. For each: the client gets the upstream's
/// bytes as they came (or a cut where the upstream cut), the call is recorded with its
/// outcome, and the proxy keeps serving.
struct UpstreamFaultTests {
    static let sseHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"

    /// One HTTP/1.1 chunk of the chunked coding.
    static func chunk(_ piece: String) -> String {
        String(piece.utf8.count, radix: 16) + "\r\n" + piece + "\r\n"
    }

    static let garbageSSE = [
        "data: {not json\n\n", ": a comment\n\n", "event: weird\ndata: [1,2,\n\n", "data:\n\n", "retry: x\n\n",
    ] + WireSamples.text.events(includeUsage: false)
    static let garbageNDJSON = ["{broken\n", "not json at all\n", "[]\n", "\n"] + WireSamples.ollamaChatStream.split(separator: "\n").map { $0 + "\n" }
    static let hugeText = String(repeating: "a", count: 10 << 20)
    static let hugeLine =
        #"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"huge-line","choices":[{"index":0,"delta":{"content":""#
        + hugeText + #""},"finish_reason":null}]}"# + "\n\n"

    /// The first half of the second event: the client must get it too, as the upstream sent it.
    static let resetMidEventPart = String(WireSamples.text.events(includeUsage: false)[1].prefix(40))

    static let upstream = RawUpstream(scripts: [
        "silence": [.send(sseHead), .pause(.seconds(30))],
        "garbage-sse": [.send(sseHead)] + garbageSSE.map { .send(chunk($0)) } + [.send("0\r\n\r\n")],
        "garbage-ndjson": [
            .send("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n")
        ] + garbageNDJSON.map { .send(chunk($0)) } + [.send("0\r\n\r\n")],
        "huge-line": [.send(sseHead), .send(chunk(hugeLine)), .send(chunk("data: [DONE]\n\n")), .send("0\r\n\r\n")],
        "http10": [.send("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + WireSamples.completion), .close],
        "reset": [.send(sseHead)] + WireSamples.text.events(includeUsage: false).prefix(2).map { .send(chunk($0)) }
            + [.pause(.milliseconds(50)), .reset],
        "reset-mid-event": [.send(sseHead)] + WireSamples.text.events(includeUsage: false).prefix(1).map { .send(chunk($0)) }
            + [.send(chunk(resetMidEventPart)), .pause(.milliseconds(50)), .reset],
        "sse-labelled-json": [
            .send(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(WireSamples.text.bytes(includeUsage: false).utf8.count)\r\n\r\n"
                    + WireSamples.text.bytes(includeUsage: false))
        ],
        "binary": [
            .send("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 6\r\n\r\n"),
            .sendBytes([0xFF, 0xFE, 0x00, 0x0A, 0x0A, 0xC3]),
        ],
    ])

    /// Runs llmtap with the raw upstream as provider `raw`, sends the named script's request,
    /// checks the proxy still serves a normal call after it, and returns the stored record.
    private func exchange(
        _ script: String, path: String = "/raw/v1/chat/completions", stream: Bool = true,
        readTimeout: Duration = .seconds(30), raw: Bool = false,
        check: @escaping @Sendable (_ status: Int, _ bytes: String, _ clean: Bool) -> Void
    ) async throws -> CallRecord {
        let store = try await Self.upstream.run { rawPort in
            try await Tap.run(configure: {
                $0.providers["raw"] = "http://127.0.0.1:\(rawPort)"
                $0.readTimeout = readTimeout
            }) { tap in
                let body =
                    path.hasSuffix("/api/chat")
                    ? #"{"model":"\#(script)","messages":[{"role":"user","content":"hi"}]}"#
                    : WireSamples.request(model: script, stream: stream)
                if raw {  // every byte on the wire before a cut (`Tap.rawPost`)
                    let (status, bytes, clean) = try await tap.rawPost(path, body: body)
                    check(status, bytes, clean)
                } else {
                    let response = try await tap.post(path, body: body)
                    let (bytes, clean) = await Tap.read(response)
                    check(Int(response.status.code), bytes, clean)
                }
                // still serving
                let next = try await tap.post(body: WireSamples.request(stream: false))
                #expect(await Tap.read(next).bytes == WireSamples.completion)
                #expect(await eventually { tap.app.recorder.stats.written == 2 })
            }
        }
        #expect(try store.integrityCheck() == "ok")
        let listed = try #require(try store.calls().first { $0.provider == "raw" })
        return try #require(try store.call(id: listed.id))
    }

    @Test func headersThenSilenceTimesOut() async throws {
        // (the follow-up call of `exchange` has the same read timeout: 1 s failed it on a busy machine)
        let call = try await exchange("silence", readTimeout: .seconds(2)) { status, bytes, clean in
            #expect(status == 200)
            #expect(bytes.isEmpty && !clean)
        }
        #expect(call.outcome == .timeout)
        #expect(call.errorType == "upstream_interrupted")
    }

    @Test func malformedSSEPassesThroughAndTheValidEventsCount() async throws {
        let call = try await exchange("garbage-sse") { status, bytes, clean in
            #expect(status == 200 && clean)
            #expect(bytes == Self.garbageSSE.joined())
        }
        #expect(call.httpStatus == 200)
        #expect(call.output == "Hello there!")
        #expect(String(decoding: call.responseBody, as: UTF8.self) == Self.garbageSSE.joined())
    }

    @Test func malformedNDJSONPassesThroughAndTheValidLinesCount() async throws {
        let call = try await exchange("garbage-ndjson", path: "/raw/api/chat") { status, bytes, clean in
            #expect(status == 200 && clean)
            #expect(bytes == Self.garbageNDJSON.joined())
        }
        #expect(call.apiFormat == "ollama.chat")
        #expect(call.output == "Rayleigh scattering.")
        #expect(call.usage?.outputTokens == 4)
    }

    @Test func tenMegabyteSSELine() async throws {
        let call = try await exchange("huge-line") { status, bytes, clean in
            #expect(status == 200 && clean)
            #expect(bytes.utf8.count == Self.hugeLine.utf8.count + "data: [DONE]\n\n".utf8.count)
            #expect(SHA256.hash(data: Data(bytes.utf8)) == SHA256.hash(data: Data((Self.hugeLine + "data: [DONE]\n\n").utf8)))
        }
        #expect(call.outcome == .ok, "\(call.errorMessage ?? "")")
        #expect(call.output?.utf8.count == Self.hugeText.utf8.count)
    }

    @Test func http10CloseDelimitedBody() async throws {
        let call = try await exchange("http10", stream: false) { status, bytes, clean in
            #expect(status == 200 && clean)
            #expect(bytes == WireSamples.completion)
        }
        #expect(call.outcome == .ok)
        #expect(call.usage?.source == .upstream)
        #expect(call.output?.isEmpty == false)
    }

    @Test func resetMidStream() async throws {
        let call = try await exchange("reset", raw: true) { status, bytes, clean in
            #expect(status == 200 && !clean)
            #expect(bytes == WireSamples.text.events(includeUsage: false).prefix(2).joined())
        }
        #expect(call.outcome == .upstreamError)
        #expect(call.errorType == "upstream_interrupted")
        #expect(call.output == "Hello")
    }

    /// Cut inside an event, while the usage filter (usage was asked for upstream) holds that
    /// event's first part: the client still gets every byte the upstream sent before the cut.
    @Test func resetInsideAnEventForwardsItsFirstPart() async throws {
        let call = try await exchange("reset-mid-event", raw: true) { status, bytes, clean in
            #expect(status == 200 && !clean)
            #expect(bytes == WireSamples.text.events(includeUsage: false)[0] + Self.resetMidEventPart)
        }
        #expect(call.outcome == .upstreamError)
        #expect(call.usageInjected)
    }

    @Test func wrongContentTypeIsPassedThroughAndRecordedAsUnparsed() async throws {
        let call = try await exchange("sse-labelled-json") { status, bytes, clean in
            #expect(status == 200 && clean)
            #expect(bytes == WireSamples.text.bytes(includeUsage: false))
        }
        #expect(call.apiFormat == "generic")
        #expect(call.errorType == "unparsed_response")
    }

    @Test func binaryGarbageIsPassedThrough() async throws {
        let call = try await exchange("binary") { status, bytes, clean in
            #expect(status == 200 && clean)
            #expect(Array(bytes.utf8).count >= 5)
        }
        #expect(call.responseBody == [0xFF, 0xFE, 0x00, 0x0A, 0x0A, 0xC3])
    }
}
