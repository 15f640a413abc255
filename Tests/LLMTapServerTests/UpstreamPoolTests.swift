import Foundation
import LLMTapCore
import LLMTapServer
import LLMTapStore
import LLMTapTestSupport
import NIOSSL
import Testing

/// The hot path's own upstream client (`UpstreamPool`): which connections it keeps, which it
/// does not, and that it speaks TLS with the certificate checked.
struct UpstreamPoolTests {
    static let keepAlive =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(WireSamples.completion.utf8.count)\r\n\r\n"
        + WireSamples.completion
    static let closing =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: \(WireSamples.completion.utf8.count)\r\n\r\n"
        + WireSamples.completion

    /// Runs llmtap with `upstream` as provider `raw` (over TLS with `tls`) and returns its store.
    private func withRaw(
        _ upstream: RawUpstream, tls: Bool = false, idleTimeout: Duration = .seconds(60),
        _ body: @escaping @Sendable (Tap) async throws -> Void
    ) async throws -> Store {
        try await upstream.run { port in
            try await Tap.run(configure: {
                $0.providers["raw"] = "\(tls ? "https" : "http")://localhost:\(port)"
                $0.upstreamIdleTimeout = idleTimeout
            }) { tap in try await body(tap) }
        }
    }

    /// A kept connection nobody uses is closed after the idle timeout; the upstream, which
    /// waits for llmtap to close it, sees it end.
    @Test func anUnusedConnectionIsClosedAfterTheIdleTimeout() async throws {
        let upstream = RawUpstream(scripts: ["idle": [.send(Self.keepAlive), .awaitClose(.seconds(30))]])
        _ = try await withRaw(upstream, idleTimeout: .milliseconds(500)) { tap in
            let response = try await tap.post("/raw/v1/chat/completions", body: WireSamples.request(model: "idle", stream: false))
            #expect(await Tap.read(response).bytes == WireSamples.completion)
            #expect(upstream.finished == 0, "kept for the next call")
            #expect(await eventually(10) { upstream.finished == 1 }, "closed by llmtap long before the upstream's 30 s")
        }
    }

    /// A call in flight is not cut by the idle timeout: a stream whose events come 450 ms apart
    /// arrives whole with a 300 ms idle timeout (the connection's one timer serves both).
    @Test func aCallLongerThanTheIdleTimeoutIsNotCut() async throws {
        let events = WireSamples.text.events(includeUsage: false)
        var steps: [RawUpstream.Step] = [.send(UpstreamFaultTests.sseHead)]
        for event in events { steps += [.pause(.milliseconds(450)), .send(UpstreamFaultTests.chunk(event))] }
        steps += [.send("0\r\n\r\n"), .awaitClose(.seconds(30))]
        let upstream = RawUpstream(scripts: ["slow": steps])
        let store = try await withRaw(upstream, idleTimeout: .milliseconds(300)) { tap in
            let response = try await tap.post("/raw/v1/chat/completions", body: WireSamples.request(model: "slow", stream: true))
            let (bytes, clean) = await Tap.read(response)
            #expect(clean)
            #expect(bytes == events.joined())
            #expect(await eventually { tap.app.recorder.stats.written == 1 })
        }
        #expect(try store.calls().map(\.outcome) == [.ok])
    }

    /// The upstream answers with keep-alive, then closes the connection without reading the
    /// next request (as a server whose keep-alive timeout ran out just then): the call llmtap
    /// had sent on it goes again on a new connection, and the client never sees the race.
    @Test func aKeptConnectionTheUpstreamDroppedIsTriedAgainOnANewOne() async throws {
        let upstream = RawUpstream(scripts: ["drops": [.send(Self.keepAlive), .pause(.milliseconds(700))]])
        let store = try await withRaw(upstream) { tap in
            for _ in 0..<2 {
                let response = try await tap.post("/raw/v1/chat/completions", body: WireSamples.request(model: "drops", stream: false))
                #expect(response.status.code == 200)
                #expect(await Tap.read(response).bytes == WireSamples.completion)
            }
            // The first connection carried both requests; the second only the one sent again.
            #expect(upstream.opened == 2)
            #expect(await eventually { tap.app.recorder.stats.written == 2 })
        }
        #expect(try store.calls().map(\.outcome) == [.ok, .ok])
    }

    /// A response that says `Connection: close` ends its connection: llmtap closes it, even
    /// while the upstream leaves it open, and the next call opens another.
    @Test func aConnectionTheResponseClosesIsNotKept() async throws {
        let upstream = RawUpstream(scripts: ["closes": [.send(Self.closing), .awaitClose(.seconds(20))]])
        _ = try await withRaw(upstream) { tap in
            for n in 1...2 {
                let response = try await tap.post("/raw/v1/chat/completions", body: WireSamples.request(model: "closes", stream: false))
                #expect(await Tap.read(response).bytes == WireSamples.completion)
                #expect(await eventually { upstream.finished == n }, "llmtap closed it; the upstream would have waited")
            }
            #expect(upstream.opened == 2)
        }
    }

    /// An HTTPS upstream whose certificate no trusted authority signed is refused: the client
    /// gets llmtap's 502 naming the failed verification, and the call is recorded unreachable.
    @Test func anUpstreamCertificateIsVerified() async throws {
        let tls = try NIOSSLContext(
            configuration: .makeServerConfiguration(
                certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(SelfSigned.certificatePEM.utf8), format: .pem))],
                privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(SelfSigned.privateKeyPEM.utf8), format: .pem))))
        let upstream = RawUpstream(scripts: ["tls": [.send(Self.keepAlive)]], tls: tls)
        let store = try await withRaw(upstream, tls: true) { tap in
            let response = try await tap.post("/raw/v1/chat/completions", body: WireSamples.request(model: "tls", stream: false))
            #expect(response.status.code == 502)
            let text = await Tap.read(response).bytes
            #expect(text.contains("upstream_unreachable"))
            #expect(text.contains("CERTIFICATE_VERIFY_FAILED"), "\(text)")
            #expect(await eventually { tap.app.recorder.stats.written == 1 })
        }
        #expect(try store.calls().map(\.outcome) == [.unreachable])
        #expect(upstream.opened == 1, "the TLS handshake reached the upstream")
    }
}
