import AsyncHTTPClient
import Foundation
import Hummingbird
import LLMTapAdapters
import LLMTapCore
import NIOCore
import NIOHTTP1

/// The LLMstudio-style engine routes of the proxy listener (SPEC §3).
enum EngineRoute: Equatable {
    case chat(provider: String)
    case providers
    case models
    case health

    init?(method: HTTPRequest.Method, path: String) {
        if method == .post, path.hasPrefix("/api/engine/chat/") {
            let provider = String(path.dropFirst("/api/engine/chat/".count))
            guard !provider.isEmpty, !provider.contains("/") else { return nil }
            self = .chat(provider: provider)
            return
        }
        guard method == .get || method == .head else { return nil }
        switch path {
        case "/api/engine/providers": self = .providers
        case "/api/engine/models": self = .models
        case "/health": self = .health
        default: return nil
        }
    }
}

/// The engine endpoint: llmtap is the client here. It builds the provider's request from
/// `chat_input` and `parameters`, calls it with the body's `api_key` (or the provider's
/// configured key), and answers with LLMstudio's response object; `is_stream` answers
/// NDJSON chunk objects carrying `chat_output_stream`, then the final object with
/// metrics. The call is recorded like any other, as api format `llmstudio`, with the
/// provider request llmtap sent and the provider's raw response as its payloads.
extension ProxyResponder {
    func respond(to route: EngineRoute, request: Request, context: Context, start: UInt64, createdAt: Double) async
        -> Response
    {
        switch route {
        case .health:
            return json(.object(["status": .string("healthy"), "message": .string("llmtap is up and running")]))
        case .providers:
            var list: [String: JSONValue] = [:]
            for name in routes.providers.keys { list[name] = providerDescription(name) }
            return json(.object(list))
        case .models:
            let wanted = request.uri.queryParameters.get("provider")
            if let wanted {
                guard routes.providers[wanted] != nil else { return unknownProvider(wanted) }
                return json(.object(["provider": .string(wanted), "models": models(of: wanted)]))
            }
            var all: [String: JSONValue] = [:]
            for name in routes.providers.keys { all[name] = models(of: name) }
            return json(.object(all))
        case .chat(let provider):
            return await engineChat(provider: provider, request: request, context: context, start: start, createdAt: createdAt)
        }
    }

    private func providerDescription(_ name: String) -> JSONValue {
        let base = routes.providers[name] ?? ""
        return .object([
            "id": .string(name),
            "name": .string(name),
            "base_url": .string(base),
            "api": .string(LLMStudioEngine.Family(provider: name, baseURL: base).rawValue),
            "chat": .bool(true),
            "key_configured": .bool(providerKeys[name] != nil),
            "models": models(of: name),
        ])
    }

    /// The provider's models the pricing table knows (an Ollama or custom provider may list none).
    private func models(of provider: String) -> JSONValue {
        .array((pricing.providers[provider]?.keys.sorted() ?? []).map(JSONValue.string))
    }

    private func unknownProvider(_ name: String) -> Response {
        ProxyError.unknownProvider(name: name, providers: Array(routes.providers.keys)).response
    }

    private func engineChat(provider: String, request: Request, context: Context, start: UInt64, createdAt: Double)
        async -> Response
    {
        guard let base = routes.providers[provider] else { return unknownProvider(provider) }
        // Virtual keys: the engine spends the configured provider keys only for their holders.
        let proxyKeyName: String?
        switch admit(request.headers) {
        case .success(let name): proxyKeyName = name
        case .failure(let error): return error.response
        }
        let body: ByteBuffer
        switch await readBody(request) {
        case .success(let read): body = read
        case .failure(let error): return error.response
        }
        let call: LLMStudioEngine.Call
        do {
            call = try LLMStudioEngine.parseCall(body)
        } catch {
            return ProxyError.badRequest(error.message).response
        }
        let model = aliases[call.model] ?? call.model
        let family = LLMStudioEngine.Family(provider: provider, baseURL: base)
        let upstream = LLMStudioEngine.upstreamRequest(call, model: model, family: family, baseURL: base)
        let route = Route(provider: provider, url: base + upstream.path, endpoint: upstream.path, api: upstream.api)
        let facts = upstream.api.parseRequest(upstream.body)

        var record = CallRecord(
            createdAt: createdAt, provider: provider, endpoint: "/api/engine/chat/\(provider)", apiFormat: "llmstudio")
        record.model = model
        record.requestedModel = model == call.model ? nil : call.model
        record.parameters = facts.parameters
        record.context = .array(call.messages)
        record.chatInput = call.chatInput
        record.isStream = call.isStream
        record.requestBody = Array(upstream.body.readableBytesView)
        describeCaller(
            &record, headers: request.headers, remoteAddress: context.remoteAddress, bodySessionID: call.sessionID)
        let key = proxyKeyName == nil ? call.apiKey ?? providerKeys[provider] : providerKeys[provider]
        record.keyFingerprint = proxyKeyName.map { "proxy:" + $0 } ?? key.map(fingerprinter.fingerprint)

        var upstreamRequest = HTTPClientRequest(url: route.url)
        upstreamRequest.method = .POST
        upstreamRequest.headers.add(name: "content-type", value: "application/json")
        switch family {
        case .anthropic:
            upstreamRequest.headers.add(name: "anthropic-version", value: "2023-06-01")
            if let key { upstreamRequest.headers.add(name: "x-api-key", value: key) }
        case .openAI, .ollama:
            if let key { upstreamRequest.headers.add(name: "authorization", value: "Bearer \(key)") }
        }
        upstreamRequest.body = .bytes(upstream.body)

        let response: HTTPClientResponse
        switch await send(
            upstreamRequest, context: context, record: record, start: start, route: route, facts: facts, logsFailure: false)
        {
        case .success(let answered): response = answered
        case .failure(let error): return error.response
        }
        let status = Int(response.status.code)
        let observation = CallObservation(
            record: record, start: start, route: route, requestFacts: facts, pricing: pricing,
            contentType: response.headers.first(name: "content-type") ?? "",
            contentEncoding: response.headers.first(name: "content-encoding"))

        guard call.isStream, status < 400 else {
            return await engineDocument(response, status: status, observation: observation)
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/x-ndjson"
        let stream = ResponseBody { [sink] writer in
            var observation = observation
            var sent = 0  // UTF-8 bytes of the output already sent as chunks
            var failure: (CallRecord.Outcome, String)?
            do {
                for try await chunk in response.body {
                    observation.received(chunk, at: CallObservation.now())
                    let text = observation.textSoFar
                    guard text.utf8.count > sent else { continue }
                    let delta = String(decoding: text.utf8.dropFirst(sent), as: UTF8.self)
                    sent = text.utf8.count
                    do {
                        try await writer.write(Self.line(EngineJSON.chunk(observation.record, delta: delta)))
                    } catch {
                        sink.submit(observation.finish(outcome: .clientCancelled, status: status))
                        throw ClientDisconnected()
                    }
                }
            } catch let error as ClientDisconnected {
                throw error
            } catch {
                failure = (Self.isTimeout(error) ? .timeout : .upstreamError, "\(error)")
            }
            let record = observation.finish(
                outcome: failure?.0 ?? .ok, status: status, error: failure.map { ("upstream_interrupted", $0.1) })
            await sink.commit(record)
            try await writer.write(Self.line(EngineJSON.final(record)))
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: stream)
    }

    /// A non-streaming engine call, or a provider's error: read whole, answered at once.
    private func engineDocument(_ response: HTTPClientResponse, status: Int, observation: CallObservation) async
        -> Response
    {
        var observation = observation
        var upstreamBody = ByteBuffer()
        do {
            for try await chunk in response.body {
                observation.received(chunk, at: CallObservation.now())
                upstreamBody.writeImmutableBuffer(chunk)
            }
        } catch {
            let outcome: CallRecord.Outcome = Self.isTimeout(error) ? .timeout : .upstreamError
            sink.submit(observation.finish(outcome: outcome, status: status, error: ("upstream_interrupted", "\(error)")))
            return ProxyError.upstreamUnreachable(url: observation.route.url, underlying: "\(error)").response
        }
        let record = observation.finish(outcome: status >= 400 ? .upstreamError : .ok, status: status)
        await sink.commit(record)
        guard status < 400 else {
            // The provider's own error, as it said it.
            var headers = HTTPFields()
            headers[.contentType] = response.headers.first(name: "content-type") ?? "application/json"
            return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: upstreamBody))
        }
        return json(EngineJSON.final(record))
    }

    private static func line(_ value: JSONValue) -> ByteBuffer {
        var buffer = ByteBuffer(string: value.canonicalText)
        buffer.writeString("\n")
        return buffer
    }
}

/// LLMstudio's response objects, built from the call's record.
enum EngineJSON {
    /// The final object: LLMstudio's `id, choices, created, model, object, usage, session_id,
    /// chat_input, chat_output, context, provider, timestamp, parameters, metrics` (plus llmtap's facts).
    static func final(_ r: CallRecord) -> JSONValue {
        APIJSON.call(r, detail: true)
    }

    /// A stream chunk: the text delta as `chat_output_stream`, no metrics yet.
    static func chunk(_ r: CallRecord, delta: String) -> JSONValue {
        .object([
            "id": .string(r.id),
            "object": .string("chat.completion.chunk"),
            "created": .int(Int64(r.createdAt)),
            "timestamp": .double(r.createdAt),
            "model": APIJSON.string(r.model),
            "provider": .string(r.provider),
            "session_id": APIJSON.string(r.sessionID),
            "chat_input": APIJSON.string(r.chatInput),
            "chat_output": .null,
            "chat_output_stream": .string(delta),
            "choices": .array([
                .object([
                    "index": .int(0), "finish_reason": .null,
                    "delta": .object(["role": .string("assistant"), "content": .string(delta)]),
                ])
            ]),
            "metrics": .null,
        ])
    }
}
