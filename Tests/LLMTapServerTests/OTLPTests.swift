import Foundation
import Hummingbird
import LLMTapCore
import LLMTapTestSupport
import NIOCore
import Synchronization
import Testing

/// An in-process OTLP/HTTP collector: keeps every `POST /v1/traces` body.
final class OTLPReceiver: Sendable {
    private let bodies = Mutex<[String]>([])
    var received: [String] { bodies.withLock { $0 } }

    func run<T: Sendable>(_ body: @Sendable (Int) async throws -> T) async throws -> T {
        let router = Router()
        router.post("/v1/traces") { request, _ -> Response in
            let bytes = try await request.body.collect(upTo: 16 << 20)
            self.bodies.withLock { $0.append(String(buffer: bytes)) }
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "{}")))
        }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) })
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await app.run()
                return nil
            }
            var iterator = ports.makeAsyncIterator()
            let port = await iterator.next()!
            let result = try await body(port)
            group.cancelAll()
            return result
        }
    }
}

struct OTLPTests {
    /// One span per call with the GenAI attributes, exported as OTLP/HTTP JSON, and no content.
    @Test func everyCallIsASpanWithGenAIAttributes() async throws {
        let receiver = OTLPReceiver()
        try await receiver.run { port in
            _ = try await Tap.run(configure: { configuration in
                configuration.otlpEndpoint = "http://127.0.0.1:\(port)"
                configuration.otlpProtocol = "http/json"
                configuration.otlpFlushInterval = .milliseconds(50)
            }) { tap in
                _ = await Tap.read(try await tap.post(body: WireSamples.request(stream: false), headers: [("X-Session-Id", "otel-1")]))
                _ = await Tap.read(try await tap.post(body: WireSamples.request(model: "http-500", stream: false)))
            }
        }
        let spans = receiver.received.compactMap { JSONValue.parse(Array($0.utf8)) }.flatMap { body in
            (body["resourceSpans"]?.arrayValue ?? []).flatMap { resource in
                (resource["scopeSpans"]?.arrayValue ?? []).flatMap { $0["spans"]?.arrayValue ?? [] }
            }
        }
        #expect(spans.count == 2)
        func attributes(_ span: JSONValue) -> [String: JSONValue] {
            var out: [String: JSONValue] = [:]
            for attribute in span["attributes"]?.arrayValue ?? [] {
                guard let key = attribute["key"]?.stringValue, let value = attribute["value"]?.objectValue?.values.first else { continue }
                out[key] = value
            }
            return out
        }
        func int(_ value: JSONValue?) -> Int64? { value?.intValue ?? value?.stringValue.flatMap { Int64($0) } }
        let ok = try #require(spans.first { attributes($0)["gen_ai.conversation.id"] == .string("otel-1") })
        let a = attributes(ok)
        #expect(ok["name"] == .string("chat gpt-4o-mini-2024-07-18"))
        #expect(a["gen_ai.operation.name"] == .string("chat"))
        #expect(a["gen_ai.request.model"] == .string("gpt-4o-mini"))
        #expect(a["gen_ai.response.model"] == .string("gpt-4o-mini-2024-07-18"))
        #expect(int(a["gen_ai.usage.input_tokens"]) == 2048 && int(a["gen_ai.usage.output_tokens"]) == 8)
        #expect(a["gen_ai.request.temperature"] == .double(0.2))
        #expect(a["llmtap.call_id"]?.stringValue?.isEmpty == false)
        let start = int(ok["startTimeUnixNano"]) ?? 0, end = int(ok["endTimeUnixNano"]) ?? 0
        #expect(end > start && start > 1_700_000_000 * 1_000_000_000)
        let failed = try #require(spans.first { attributes($0)["llmtap.outcome"] == .string("upstream_error") })
        #expect(attributes(failed)["error.type"] == .string("server_error"))
        #expect(int(attributes(failed)["http.response.status_code"]) == 500)
        #expect(!receiver.received.joined().contains("Capital of France"), "no prompt text in spans")
    }
}
