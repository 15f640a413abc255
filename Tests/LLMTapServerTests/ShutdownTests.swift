import Foundation
import LLMTapStore
import LLMTapTestSupport
import Testing

struct ShutdownTests {
    /// SIGTERM's path: the proxy stops taking calls, finishes the stream in flight,
    /// and the recorder writes its record before the process would exit.
    @Test func gracefulShutdownFinishesInFlightStreamsAndDrainsTheRecorder() async throws {
        let store = try await Tap.run { tap in
            let response = try await tap.post(
                body: WireSamples.request(model: "slow", stream: true, extra: #","stream_options":{"include_usage":true}"#))
            var iterator = response.body.makeAsyncIterator()
            var received = ""
            received += String(buffer: try #require(try await iterator.next()))
            let shutdown = Task { await tap.group.triggerGracefulShutdown() }
            try await Task.sleep(for: .milliseconds(100))
            tap.upstream.openGate()
            while let chunk = try await iterator.next() { received += String(buffer: chunk) }
            #expect(received == WireSamples.text.bytes(includeUsage: true))
            await shutdown.value
        }
        let call = try #require(try store.calls().first)
        #expect(call.outcome == .ok)
        #expect(call.output == "Hello there!")
    }
}
