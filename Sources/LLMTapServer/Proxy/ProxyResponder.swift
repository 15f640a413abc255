import AsyncHTTPClient
import Foundation
import Hummingbird
import LLMTapAdapters
import LLMTapCore
import LLMTapStore
import Logging
import NIOCore
import NIOHTTP1

/// Where finished calls go: redacted when configured, counted in the metrics, then queued
/// for the recorder.
struct CallSink: Sendable {
    let recorder: Recorder
    let metrics: LLMTapMetrics
    /// OTLP span export, when configured.
    var spans: CallSpans? = nil
    /// `--redact`: applied before the record goes anywhere.
    var redactor: Redactor? = nil
    /// `--durability sync`: `commit` waits for the database.
    var sync = false

    /// Queues a call that ended without a complete answer to send, or in fast mode.
    func submit(_ call: CallRecord) {
        recorder.submit(prepared(call))
    }

    /// Queues a call whose record `finish` builds, off the event loop that ended it; the loop
    /// wakes the recorder's writer from a timer when the batch window closes, not now
    /// (`Recorder.submitLeavingWake`).
    /// - Parameter bytes: the size of its request and response bodies.
    func submit(bytes: Int, on loop: any EventLoop, building finish: @escaping @Sendable () -> CallRecord) {
        let recorder = recorder
        if recorder.submitLeavingWake(bytes: bytes, building: { [self] in prepared(finish()) }) {
            loop.scheduleTask(in: .nanoseconds(Int64(recorder.flushInterval.nanoseconds))) { recorder.ring() }
        }
    }

    /// Records a call whose answer is about to end: in sync mode, returns once the record is
    /// committed (or spooled), so a call the client saw complete is never lost.
    func commit(_ call: CallRecord) async {
        let call = prepared(call)
        if sync { await recorder.submitAndWait(call) } else { recorder.submit(call) }
    }

    private func prepared(_ call: CallRecord) -> CallRecord {
        var call = call
        if let redactor { call.redact(with: redactor) }
        metrics.observe(call)
        spans?.record(call)
        return call
    }
}

/// The client closed its connection before the response ended.
struct ClientDisconnected: Error {}

/// Hands a value to a child task that is its only user while the parent waits.
struct UncheckedTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// The proxy: forwards every request to its upstream and tees the response —
/// each upstream chunk is written to the client first, then observed for the
/// record; the record goes to the Recorder when the call ends, off the
/// request path. It answers errors of its own (404, 413, 502, 504) in
/// OpenAI's shape and never a 500 for a client's input.
struct ProxyResponder: HTTPResponder {
    typealias Context = ProxyRequestContext

    let routes: Routes
    let clients: UpstreamClients
    let sink: CallSink
    let pricing: PricingTable
    let fingerprinter: KeyFingerprinter
    let maxBodyBytes: Int
    let injectUsage: Bool
    /// Model aliases (`auto` → a model), applied only to the names listed.
    let aliases: [String: String]
    /// Keys the engine endpoint uses when a call brings none, and the proxy with virtual keys; in memory only.
    let providerKeys: [String: String]
    /// Virtual keys: when set, every proxied call needs one.
    var proxyKeys = ProxyKeys([:])
    let logger: Logger

    func respond(to request: Request, context: Context) async throws -> Response {
        let start = CallObservation.now()
        let createdAt = Date().timeIntervalSince1970
        if let engine = EngineRoute(method: request.method, path: request.uri.path) {
            return await respond(to: engine, request: request, context: context, start: start, createdAt: createdAt)
        }
        guard let route = routes.route(path: request.uri.path, query: request.uri.query) else {
            return ProxyError.noRoute(path: request.uri.path, providers: Array(routes.providers.keys)).response
        }
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

        let prepared = CallObservation.now()  // the body is in: from here on, the time is llmtap's own
        let call = outgoing(route: route, headers: request.headers, body: body, proxyKeyName: proxyKeyName)
        let record = record(
            of: call, route: route, headers: request.headers, remoteAddress: context.remoteAddress,
            proxyKeyName: proxyKeyName, createdAt: createdAt)
        let facts = call.facts
        var upstreamRequest = HTTPClientRequest(url: route.url)
        upstreamRequest.method = HTTPMethod(rawValue: request.method.rawValue)
        upstreamRequest.headers = call.headers
        if call.sendsBody { upstreamRequest.body = .bytes(call.body) }

        let requestSide = CallObservation.now() &- prepared
        let response: HTTPClientResponse
        switch await send(
            upstreamRequest, context: context, record: record, start: start, route: route, facts: facts, logsFailure: true)
        {
        case .success(let answered): response = answered
        case .failure(let error): return error.response
        }
        return tee(
            response, clientClosed: context.clientClosed, record: record, start: start, route: route, facts: facts,
            requestSide: requestSide)
    }

    /// With virtual keys configured, the name of the proxy key the request carries, or the 401
    /// to answer; nil when llmtap has no proxy keys (clients bring provider keys themselves).
    func admit(_ headers: HTTPFields) -> Result<String?, ProxyError> {
        guard !proxyKeys.isEmpty else { return .success(nil) }
        guard let name = proxyKeys.name(in: headers) else { return .failure(.unknownProxyKey) }
        return .success(name)
    }

    /// A proxied call as it goes upstream.
    struct Outgoing {
        var facts: RequestFacts
        /// The body sent upstream: the client's, with an alias's model or the usage option written in.
        var body: ByteBuffer
        var headers: HTTPHeaders
        /// Whether the upstream request carries a body (it did, or declared a length).
        var sendsBody: Bool
        /// The client's body, as the record keeps it.
        var requestBody: [UInt8]
        /// The model the client named, when an alias rewrote it.
        var requestedModel: String?
        var usageInjected: Bool
    }

    /// Reads what the call needs before it goes upstream (`RequestSummary`) and applies aliases,
    /// usage injection and virtual keys. The body is parsed when the record is finished
    /// (`CallObservation.finish`), off the event loop on the hot path.
    func outgoing(route: Route, headers: HTTPFields, body: ByteBuffer, proxyKeyName: String?) -> Outgoing {
        let requestBody = Array(body.readableBytesView)  // the record's copy, read once here
        let summary = RequestSummary(requestBody)
        var facts = RequestFacts(summary: summary)
        var upstreamBody = body
        var requestedModel: String?
        if let model = facts.model, let target = aliases[model], let rewritten = ModelAlias.rewrite(body, to: target) {
            upstreamBody = rewritten
            requestedModel = model
            facts.model = target
        }
        var usageInjected = false
        if injectUsage, route.api.takesStreamOptions,
            let injected = OpenAIChat.injectingUsage(into: upstreamBody, summary: summary)
        {
            upstreamBody = injected
            usageInjected = true
        }
        var upstreamHeaders = HeaderPolicy.upstreamHeaders(from: headers)
        if proxyKeyName != nil {
            ProxyKeys.swap(
                &upstreamHeaders, providerKey: providerKeys[route.provider],
                api: route.api == .anthropicMessages ? .xAPIKey : .bearer)
        }
        return Outgoing(
            facts: facts, body: upstreamBody, headers: upstreamHeaders,
            sendsBody: upstreamBody.readableBytes > 0 || headers.first(.contentLength) != nil,
            requestBody: requestBody, requestedModel: requestedModel, usageInjected: usageInjected)
    }

    /// The record of a call as it went upstream, so far: who called, with what, under which key.
    func record(
        of call: Outgoing, route: Route, headers: HTTPFields, remoteAddress: SocketAddress?, proxyKeyName: String?,
        createdAt: Double
    ) -> CallRecord {
        var record = CallRecord(
            createdAt: createdAt, provider: route.provider, endpoint: route.endpoint,
            apiFormat: route.api.rawValue)
        record.requestedModel = call.requestedModel
        describe(&record, headers: headers, remoteAddress: remoteAddress, facts: call.facts, requestBody: call.requestBody)
        record.usageInjected = call.usageInjected
        if let proxyKeyName { record.keyFingerprint = "proxy:" + proxyKeyName }
        return record
    }

    /// The request body, up to the size limit.
    func readBody(_ request: Request) async -> Result<ByteBuffer, ProxyError> {
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > maxBodyBytes {
            return .failure(.bodyTooLarge(limit: maxBodyBytes))
        }
        do {
            return .success(try await request.body.collect(upTo: maxBodyBytes))
        } catch let error as HTTPError where error.status == .contentTooLarge {
            return .failure(.bodyTooLarge(limit: maxBodyBytes))
        } catch is NIOTooManyBytesError {
            // A body without a declared length (chunked) that outgrew the limit while read.
            return .failure(.bodyTooLarge(limit: maxBodyBytes))
        } catch {
            return .failure(.badRequest("the request body could not be read: \(error)"))
        }
    }

    /// The client's response: the upstream's status, headers and body, streamed through.
    private func tee(
        _ response: HTTPClientResponse, clientClosed: EventLoopFuture<Void>, record: CallRecord, start: UInt64,
        route: Route, facts: RequestFacts, requestSide: UInt64
    ) -> Response {
        let contentType = response.headers.first(name: "content-type")?.lowercased() ?? ""
        let isEventStream =
            contentType.hasPrefix("text/event-stream") || contentType.hasPrefix("application/x-ndjson")
        let contentEncoding = response.headers.first(name: "content-encoding")
        let rewrite = record.usageInjected && isEventStream && contentEncoding == nil
        let status = Int(response.status.code)
        let hasLength = !rewrite && response.headers.first(name: "content-length") != nil
        let observation = CallObservation(
            record: record, start: start, route: route, requestFacts: facts, pricing: pricing,
            contentType: contentType, contentEncoding: contentEncoding)
        let body = ResponseBody { [sink] writer in
            var observation = observation
            guard isEventStream else {
                try await Self.pump(
                    response.body, status: status, hasLength: hasLength, to: &writer, observation: &observation,
                    rewrite: rewrite, sink: sink, requestSide: requestSide)
                return
            }
            // A stream can idle for minutes between chunks, so the client's connection closing must end it
            // at once, not at the next write: the tee runs in a child task, and the client closing its
            // connection cancels it — the record is written and the upstream call cancelled with it.
            let (closed, closedSignal) = AsyncStream<Void>.makeStream()
            clientClosed.whenComplete { _ in closedSignal.finish() }
            // The child task is the writer's only user while this task waits for it.
            let transfer = UncheckedTransfer((writer, observation))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    var (writer, observation) = transfer.value
                    try await Self.pump(
                        response.body, status: status, hasLength: hasLength, to: &writer, observation: &observation,
                        rewrite: rewrite, sink: sink, requestSide: requestSide)
                }
                group.addTask {
                    for await _ in closed {}
                    if !Task.isCancelled { throw ClientDisconnected() }
                }
                try await group.next()
                group.cancelAll()
            }
        }
        return Response(
            status: .init(code: status, reasonPhrase: response.status.reasonPhrase),
            headers: HeaderPolicy.clientHeaders(from: response.headers, bodyRewritten: rewrite),
            body: body)
    }

    /// The tee itself: each upstream read is written to the client, then observed; the record
    /// is submitted once, however the call ends.
    ///
    /// `requestSide` is llmtap's own time before the call went upstream; with the time from the
    /// first upstream read to its write to the client it makes `llmtap_overhead_seconds` — what
    /// llmtap adds to a call, without the network's and the upstream's time.
    private static func pump(
        _ body: some AsyncSequence<ByteBuffer, any Error>, status: Int, hasLength: Bool,
        to writer: inout any ResponseBodyWriter, observation: inout CallObservation, rewrite: Bool, sink: CallSink,
        requestSide: UInt64
    ) async throws {
        var overheadPending = true
        func observeOverhead(since arrival: UInt64?) {
            guard overheadPending else { return }
            overheadPending = false
            let responseSide = arrival.map { CallObservation.now() &- $0 } ?? 0
            sink.metrics.observeOverhead(seconds: Double(requestSide &+ responseSide) / 1e9)
        }
        var filter = rewrite ? OpenAIChat.UsageChunkFilter() : nil
        var upstream = body.makeAsyncIterator()
        // Sync durability and a body of declared length: the client takes the response as complete
        // with its last byte, so that byte waits for the commit. (A chunked body ends with its
        // terminating chunk, sent by `finish` after the commit.)
        let holdLastByte = sink.sync && hasLength
        var held: ByteBuffer?
        while true {
            let chunk: ByteBuffer?
            do {
                chunk = try await upstream.next()
            } catch {
                // The upstream failed mid-body (the client gets the same cut), or the client left.
                let outcome: CallRecord.Outcome =
                    Task.isCancelled ? .clientCancelled : (isTimeout(error) ? .timeout : .upstreamError)
                if outcome != .clientCancelled, let rest = filter?.finish(), rest.readableBytes > 0 {
                    try? await writer.write(rest)  // a partial event the usage filter was holding
                }
                sink.submit(
                    observation.finish(
                        outcome: outcome, status: status,
                        error: outcome == .clientCancelled ? nil : ("upstream_interrupted", "\(error)")))
                throw error
            }
            guard let chunk else { break }
            let arrival = CallObservation.now()
            var forward = filter != nil ? filter!.process(chunk) : chunk
            if holdLastByte, forward.readableBytes > 0 {
                if var previous = held {
                    previous.writeImmutableBuffer(forward)
                    forward = previous
                }
                held = forward.getSlice(at: forward.writerIndex - 1, length: 1)  // the last byte, kept back
                forward.moveWriterIndex(to: forward.writerIndex - 1)
            }
            do {
                if forward.readableBytes > 0 {
                    try await writer.write(forward)
                    observeOverhead(since: arrival)
                }
            } catch {
                observation.received(chunk, at: arrival)
                sink.submit(observation.finish(outcome: .clientCancelled, status: status))
                throw error
            }
            observation.received(chunk, at: arrival)
        }
        observeOverhead(since: nil)  // an empty body: the request side only
        let outcome: CallRecord.Outcome = status >= 400 ? .upstreamError : .ok
        var recorded = false
        do {
            if let rest = filter?.finish(), rest.readableBytes > 0 { try await writer.write(rest) }
            if sink.sync {
                // Committed before the held byte and the end of the body go out.
                await sink.commit(observation.finish(outcome: outcome, status: status))
                recorded = true
                if let held { try await writer.write(held) }
            }
            try await writer.finish(nil)
        } catch {
            if !recorded { sink.submit(observation.finish(outcome: .clientCancelled, status: status)) }
            throw error
        }
        if !recorded { sink.submit(observation.finish(outcome: outcome, status: status)) }
    }

    /// Identity, session, tags and request facts of the record.
    func describe(
        _ record: inout CallRecord, headers: HTTPFields, remoteAddress: SocketAddress?, facts: RequestFacts,
        requestBody: [UInt8]
    ) {
        record.requestBody = requestBody
        describeCaller(&record, headers: headers, remoteAddress: remoteAddress, bodySessionID: nil)
        Self.describeBody(&record, facts: facts)
        record.keyFingerprint = fingerprinter.fingerprint(headers: headers)
    }

    /// What the request body says: model, parameters, context, chat input, stream, and its
    /// session id when no header gave one.
    static func describeBody(_ record: inout CallRecord, facts: RequestFacts) {
        record.model = facts.model
        record.parameters = facts.parameters
        record.context = facts.context
        record.chatInput = facts.chatInput
        record.isStream = facts.isStream
        if record.sessionSource == nil, let id = facts.sessionID, !id.isEmpty {
            record.sessionID = id
            record.sessionSource = .body
        }
    }

    /// Session, tags, no-log flag and client address: what the caller's headers say.
    func describeCaller(
        _ record: inout CallRecord, headers: HTTPFields, remoteAddress: SocketAddress?, bodySessionID: String?
    ) {
        if let id = headers[named: "x-session-id"] ?? headers[named: "x-tap-session"], !id.isEmpty {
            record.sessionID = id
            record.sessionSource = .header
        } else if let id = bodySessionID, !id.isEmpty {
            record.sessionID = id
            record.sessionSource = .body
        }
        for field in headers {
            let name = field.name.canonicalName
            if name.hasPrefix("x-tap-meta-"), name.count > 11 {
                record.tags[String(name.dropFirst(11))] = field.value
            }
        }
        let noLog = headers[named: "x-tap-no-log"]?.lowercased()
        record.noLog = noLog == "1" || noLog == "true"
        record.clientAddress = remoteAddress?.ipAddress
    }

    /// What a failed upstream call means for the record and the client; no error when the client left.
    static func classify(_ error: Error, url: String) -> (outcome: CallRecord.Outcome, error: ProxyError?) {
        if error is CancellationError { return (.clientCancelled, nil) }
        if let error = error as? HTTPClientError, error == .cancelled { return (.clientCancelled, nil) }
        if isTimeout(error) { return (.timeout, .upstreamTimeout(url: url)) }
        return (.unreachable, .upstreamUnreachable(url: url, underlying: "\(error)"))
    }

    /// Sends a call upstream on a connection of the client connection's event loop. A call that
    /// gets no response is recorded here, and the error is llmtap's own answer for the client.
    func send(
        _ upstreamRequest: HTTPClientRequest, context: Context, record: CallRecord, start: UInt64, route: Route,
        facts: RequestFacts, logsFailure: Bool
    ) async -> Result<HTTPClientResponse, ProxyError> {
        sink.metrics.upstreamStarted()
        do {
            return .success(
                try await clients.client(on: context.clientClosed.eventLoop)
                    .execute(upstreamRequest, deadline: .now() + .hours(24), logger: logger))
        } catch {
            return .failure(
                Self.recordUnanswered(
                    error, record: record, start: start, route: route, facts: facts, pricing: pricing, sink: sink,
                    logger: logsFailure ? logger : nil))
        }
    }

    /// Records a call that got no response at all — unreachable, timed out, or the client left
    /// first — and gives llmtap's own answer for the client (502 or 504).
    static func recordUnanswered(
        _ error: Error, record: CallRecord, start: UInt64, route: Route, facts: RequestFacts, pricing: PricingTable,
        sink: CallSink, clientLeft: Bool = false, logger: Logger?
    ) -> ProxyError {
        var failure = classify(error, url: route.url)
        if clientLeft { failure = (.clientCancelled, nil) }
        var observation = CallObservation(
            record: record, start: start, route: route, requestFacts: facts, pricing: pricing, contentType: "",
            contentEncoding: nil)
        sink.submit(
            observation.finish(
                outcome: failure.outcome, status: failure.error.map { Int($0.status.code) },
                error: failure.error.map { ($0.type, $0.message) } ?? ("client_cancelled", "\(error)")))
        logger?.info(
            "upstream call failed",
            metadata: ["llmtap.provider": "\(route.provider)", "llmtap.outcome": "\(failure.outcome.rawValue)"])
        return failure.error ?? ProxyError.upstreamUnreachable(url: route.url, underlying: "cancelled")
    }

    static func isTimeout(_ error: Error) -> Bool {
        guard let error = error as? HTTPClientError else { return false }
        return error == .readTimeout || error == .deadlineExceeded
    }
}
