import Foundation
import LLMTapCore
import LLMTapServer
import LLMTapStore
import LLMTapTestSupport
import Testing

/// The event-loop hot path shares its connections with Hummingbird: what it takes and what it
/// leaves must come back in order, on one connection, with nothing lost.
struct ProxyChannelHandlerTests {
    static func post(_ path: String, _ body: String, close: Bool = false) -> String {
        "POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + (close ? "Connection: close\r\n" : "") + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    @Test func pipelinedRequestsAreAnsweredInOrderAndConnectionCloseIsHonoured() async throws {
        let store = try await Tap.run { tap in
            let connection = try await RawConnection(port: tap.proxyPort)
            // Three requests in one write: proxied here, answered by Hummingbird (no route), proxied
            // and streamed; the last asks to close the connection after its answer.
            try await connection.send(
                Self.post("/v1/chat/completions", WireSamples.request(model: "first", stream: false))
                    + Self.post("/nowhere/v1/chat/completions", "{}")
                    + Self.post("/v1/chat/completions", WireSamples.request(model: "third", stream: true), close: true))
            let (received, closed) = await connection.readUntilClosed(seconds: 10)
            #expect(closed)
            let statuses = received.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
            #expect(statuses == ["200", "404", "200"])
            #expect(received.contains(WireSamples.completion))
            #expect(received.contains("not_found"))
            #expect(received.contains("data: [DONE]"))
            #expect(tap.upstream.requests.count == 2)
        }
        let models = try store.calls().compactMap(\.model)
        #expect(models.sorted() == ["first", "third"])
    }

    @Test func aBodyOverTheLimitWithoutALengthGets413() async throws {
        let store = try await Tap.run(configure: { $0.maxBodyBytes = 1000 }) { tap in
            let connection = try await RawConnection(port: tap.proxyPort)
            let body = WireSamples.request(stream: false, extra: #","pad":""# + String(repeating: "x", count: 2000) + "\"")
            let utf8 = Array(body.utf8)
            var chunked = ""
            for start in stride(from: 0, to: utf8.count, by: 500) {
                let piece = String(decoding: utf8[start..<min(start + 500, utf8.count)], as: UTF8.self)
                chunked += String(piece.utf8.count, radix: 16) + "\r\n" + piece + "\r\n"
            }
            try await connection.send(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked + "0\r\n\r\n")
            let (received, _) = await connection.readUntilClosed(seconds: 10)
            #expect(received.hasPrefix("HTTP/1.1 413"))
            #expect(received.contains("request_too_large"))
            #expect(tap.upstream.requests.isEmpty)
            // The proxy keeps serving.
            let next = try await tap.post(body: WireSamples.request(stream: false))
            #expect(await Tap.read(next).bytes == WireSamples.completion)
        }
        #expect(try store.callCount() == 1)
    }

    /// A client that waits for `100 Continue` before sending its body is told at once (curl
    /// waits a second for it on bodies over 1 MB); the expectation is not forwarded upstream.
    @Test(arguments: [false, true])
    func expectContinueIsAnsweredAtOnce(sync: Bool) async throws {
        let store = try await Tap.run(configure: { $0.durability = sync ? .sync : .fast }) { tap in
            let connection = try await RawConnection(port: tap.proxyPort)
            let body = WireSamples.request(stream: false)
            try await connection.send(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + "Expect: 100-continue\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
            let interim = await connection.read(until: "\r\n\r\n", seconds: 5)
            #expect(interim.hasPrefix("HTTP/1.1 100 Continue"))
            try await connection.send(body)
            let (received, _) = await connection.readUntilClosed(seconds: 10)
            #expect(received.hasPrefix("HTTP/1.1 200"))
            #expect(received.hasSuffix(WireSamples.completion))
            #expect(tap.upstream.requests.count == 1)
            #expect(tap.upstream.requests.first?.header("expect") == nil)
        }
        #expect(try store.callCount() == 1)
    }

    /// A declared body over the limit is refused without asking for it.
    @Test func expectContinueOverTheLimitGets413Only() async throws {
        _ = try await Tap.run(configure: { $0.maxBodyBytes = 1000 }) { tap in
            let connection = try await RawConnection(port: tap.proxyPort)
            try await connection.send(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + "Expect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
            let answer = await connection.read(until: "request_too_large", seconds: 5)
            #expect(answer.hasPrefix("HTTP/1.1 413"))
            #expect(!answer.contains("100 Continue"))
            #expect(tap.upstream.requests.isEmpty)
            await connection.close()
        }
    }

    /// Calls share pooled upstream connections: a connection per queued call (AsyncHTTPClient's
    /// "overflow" connections, closed when idle) was what a required event loop gave.
    @Test func concurrentCallsReuseUpstreamConnections() async throws {
        let store = try await Tap.run { tap in
            for _ in 0..<8 {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for n in 0..<16 {
                        group.addTask {
                            let response = try await tap.post(body: WireSamples.request(stream: n % 2 == 0))
                            #expect(await Tap.read(response).clean)
                        }
                    }
                    try await group.waitForAll()
                }
            }
            #expect(tap.upstream.requests.count == 128)
            #expect(tap.upstream.openedConnections <= 32)  // at most 16 calls at once, on either event loop
        }
        #expect(await eventually { (try? store.callCount()) == 128 })
    }
}
