import AsyncHTTPClient
import Foundation
import LLMTapCore
import LLMTapServer
import LLMTapStore
import LLMTapTestSupport
import NIOCore
import NIOPosix
import Testing

/// Faults on either side: the client gets a sane answer, the call is recorded
/// with its outcome, and the proxy keeps serving.
struct ProxyFaultTests {
    @Test func unreachableUpstreamGets502AndARecord() async throws {
        let reserved = try ClosedPort()
        defer { reserved.release() }
        let closedPort = reserved.port
        let store = try await Tap.run(upstreamURL: "http://127.0.0.1:\(closedPort)") { tap in
            let response = try await tap.post(body: WireSamples.request(stream: false))
            #expect(response.status == .badGateway)
            let body = JSONValue.parse(Array(await Tap.read(response).bytes.utf8))
            #expect(body?["error"]?["type"] == .string("upstream_unreachable"))
            #expect(body?["error"]?["message"]?.stringValue?.contains("127.0.0.1:\(closedPort)") == true)
        }
        let call = try #require(try store.calls().first)
        #expect(call.outcome == .unreachable)
        #expect(call.httpStatus == 502)
        #expect(call.errorType == "upstream_unreachable")
        // The request body, parsed when the record is built, not before the call went out.
        #expect(call.model == "gpt-4o-mini" && call.chatInput == "Capital of France?")
        #expect(call.parameters?["temperature"] == .double(0.2) && call.context?.arrayValue?.count == 2)
    }

    /// The record is made once the request is on its way, not before; a call that fails
    /// before that — an upstream address the client cannot send to fails at once, inside the
    /// send — makes it then: the same record, with the caller's session and tags.
    @Test func aCallFailedInsideTheSendIsRecordedWholeAsWell() async throws {
        let store = try await Tap.run(upstreamURL: "http://127.0.0.1:70000") { tap in
            let response = try await tap.post(
                body: WireSamples.request(stream: false),
                headers: [("X-Session-Id", "failed-at-once"), ("X-Tap-Meta-Team", "core"), ("Authorization", "Bearer sk-test")])
            #expect(response.status == .badGateway)
            let body = JSONValue.parse(Array(await Tap.read(response).bytes.utf8))
            #expect(body?["error"]?["type"] == .string("upstream_unreachable"))
        }
        let call = try #require(try store.calls().first)
        #expect(call.outcome == .unreachable && call.httpStatus == 502)
        #expect(call.sessionID == "failed-at-once" && call.sessionSource == .header)
        #expect(call.tags == ["team": "core"])
        #expect(call.keyFingerprint != nil)
        #expect(call.model == "gpt-4o-mini" && call.chatInput == "Capital of France?")
        #expect(try store.call(id: call.id)?.requestBody == Array(WireSamples.request(stream: false).utf8))
    }

    @Test func upstreamCutMidStream() async throws {
        let store = try await Tap.run { tap in
            let (status, bytes, clean) = try await tap.rawPost(body: WireSamples.request(model: "cut", stream: true))
            #expect(status == 200 && !clean)
            #expect(bytes == WireSamples.text.events(includeUsage: false).prefix(2).joined())
            // still serving
            let next = try await tap.post(body: WireSamples.request(stream: false))
            #expect(await Tap.read(next).bytes == WireSamples.completion)
        }
        let calls = try store.calls()
        let cut = try #require(calls.first { $0.model == "cut" })
        #expect(cut.outcome == .upstreamError)
        #expect(cut.errorType == "upstream_interrupted")
        #expect(cut.output == "Hello")
        #expect(calls.count == 2)
    }

    @Test func stalledUpstreamTimesOut() async throws {
        // Long enough that a busy machine still sends the head and first chunk in time.
        let store = try await Tap.run(configure: { $0.readTimeout = .milliseconds(1500) }) { tap in
            let response = try await tap.post(body: WireSamples.request(model: "stall", stream: true))
            let (bytes, clean) = await Tap.read(response)
            #expect(!clean)
            #expect(bytes == WireSamples.text.events(includeUsage: false)[0])
        }
        let call = try #require(try store.calls().first)
        #expect(call.outcome == .timeout)
    }

    /// A streaming call on a raw connection, closed for real once `marker` has arrived, as a
    /// client process would.
    static func streamAndHangUp(model: String, port: Int, after marker: String) async throws {
        let body = WireSamples.request(model: model, stream: true)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(
                ByteBuffer(
                    string: "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                        + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"))
            var received = ""
            for try await chunk in inbound {
                received += String(buffer: chunk)
                if received.contains(marker) { break }
            }
        }
    }

    @Test func clientHangingUpMidStreamIsRecordedAndCancelsTheUpstream() async throws {
        let store = try await Tap.run { tap in
            // Closed after the first content chunk.
            try await Self.streamAndHangUp(model: "slow", port: tap.proxyPort, after: "Hello")
            // llmtap notices the hang-up while the upstream is still silent, records the call,
            // and cancels the upstream call (its connection closes).
            #expect(await eventually { tap.app.recorder.stats.written >= 1 })
            #expect(await eventually { tap.upstream.closedConnections >= 1 })
            tap.upstream.openGate()
        }
        let call = try #require(try store.calls().first)
        #expect(call.outcome == .clientCancelled)
        #expect(call.output == "Hello")
        #expect(call.usage?.source == .estimated)
        #expect(call.errorType == nil)
    }

    /// SDKs stop reading at the API's end marker and may close before the body's last chunk:
    /// a client that had the whole answer is an `ok` call, not a cancelled one.
    @Test func clientLeavingAfterDoneIsACompleteCall() async throws {
        let store = try await Tap.run { tap in
            try await Self.streamAndHangUp(model: "linger", port: tap.proxyPort, after: "data: [DONE]")
            #expect(await eventually { tap.app.recorder.stats.written >= 1 })
        }
        let call = try #require(try store.calls().first)
        #expect(call.outcome == .ok)
        #expect(call.output == "Hello there!")
        #expect(call.usage?.source == .upstream)
    }

    @Test func oversizedBodyGets413() async throws {
        let store = try await Tap.run(configure: { $0.maxBodyBytes = 1000 }) { tap in
            let response = try await tap.post(body: WireSamples.request(stream: false, extra: #","pad":""# + String(repeating: "x", count: 2000) + "\""))
            #expect(response.status == .payloadTooLarge)
            let body = JSONValue.parse(Array(await Tap.read(response).bytes.utf8))
            #expect(body?["error"]?["type"] == .string("request_too_large"))
            #expect(tap.upstream.requests.isEmpty)
            let small = try await tap.post(body: WireSamples.request(stream: false))
            #expect(small.status == .ok)
        }
        #expect(try store.callCount() == 1)
    }

    @Test func unknownPathGets404() async throws {
        _ = try await Tap.run { tap in
            let response = try await tap.post("/nowhere/v1/chat/completions", body: "{}")
            #expect(response.status == .notFound)
            let body = JSONValue.parse(Array(await Tap.read(response).bytes.utf8))
            #expect(body?["error"]?["type"] == .string("not_found"))
            #expect(body?["error"]?["message"]?.stringValue?.contains("anthropic, local, ollama, openai") == true)
        }
    }

    @Test func providerPrefixRoutesAndStrips() async throws {
        let upstream = FakeUpstream()
        let store = try await Tap.run(upstream: upstream) { tap in
            // the harness names the fake upstream "local" too
            let response = try await tap.post("/local/v1/chat/completions?x=1", body: WireSamples.request(stream: false))
            #expect(response.status == .ok)
            #expect(upstream.requests.last?.path == "/v1/chat/completions")
        }
        #expect(try store.calls().first?.provider == "local")
    }

    /// A port nothing listens on, held by a bound socket that never listens until `release`:
    /// a port merely closed again could be taken by a test running beside this one (seen: a
    /// 404 from another test's llmtap instead of the 502).
    struct ClosedPort {
        let port: Int
        private let descriptor: Int32

        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw ChannelError.ioOnClosedChannel }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                    bind(fd, generic, length) == 0 && getsockname(fd, generic, &length) == 0
                }
            }
            guard bound else {
                close(fd)
                throw ChannelError.ioOnClosedChannel
            }
            descriptor = fd
            port = Int(UInt16(bigEndian: address.sin_port))
        }

        func release() { close(descriptor) }
    }
}
