import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdCore
import LLMTapAdapters
import LLMTapCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// The proxy's hot path, on the client connection's event loop.
///
/// Hummingbird's responder and AsyncHTTPClient's async API hand every request, response head
/// and body chunk between the event loop and Swift's task pool: measured, that was most of
/// what llmtap added to a call (a bare pass-through on them costs ~190 µs of CPU per call
/// against nginx's ~22). Here a proxied call never leaves its loop: this handler collects
/// the request, sends it on a pooled upstream connection of the same loop (`UpstreamPool`),
/// and `UpstreamTee` writes each upstream read to the client as it arrives, then
/// observes it for the record — the same tee as `ProxyResponder.pump`, the same
/// `ProxyResponder.outgoing` request side, the same `CallObservation`.
///
/// What it does not take goes on to Hummingbird untouched and is answered as before: the
/// engine route, a path with no route (404), a missing virtual key (401), a body over the
/// limit (413), the query API's own listener, and every call under `--durability sync`,
/// whose held last byte waits on the database.
final class ProxyChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private struct Collecting {
        var head: HTTPRequest
        var route: Route
        var proxyKeyName: String?
        var body: ByteBuffer
        var start: UInt64
        var createdAt: Double
    }

    private enum State {
        case idle
        /// A proxied request whose body is arriving.
        case collecting(Collecting)
        /// A proxied call in flight: its request is read, its response not yet ended.
        case forwarding(UpstreamTee)
        /// A request Hummingbird answers, until both its request and its response ended.
        case passing(requestEnded: Bool, responseEnded: Bool)
    }

    private let responder: ProxyResponder
    private var state = State.idle
    /// Parts of the next request that arrived while one is answered (HTTP pipelining): answered in turn.
    private var pending: [HTTPRequestPart] = []
    /// The server is shutting down: the connection closes once the call in flight ends.
    private var quiescing = false

    init(responder: ProxyResponder) {
        self.responder = responder
    }

    /// The route and virtual key of a request this handler proxies; nil leaves it to Hummingbird.
    private func intercept(_ head: HTTPRequest) -> (route: Route, proxyKeyName: String?)? {
        guard !responder.sink.sync else { return nil }
        let uri = URI(head.path ?? "/")
        if EngineRoute(method: head.method, path: uri.path) != nil { return nil }
        guard let route = responder.routes.route(path: uri.path, query: uri.query) else { return nil }
        guard case .success(let proxyKeyName) = responder.admit(head.headerFields) else { return nil }
        if declaresTooLarge(head) { return nil }
        return (route, proxyKeyName)
    }

    /// The request declares a body over the limit (Hummingbird answers it 413 without reading it).
    private func declaresTooLarge(_ head: HTTPRequest) -> Bool {
        head.headerFields.first(.contentLength).flatMap(Int.init).map { $0 > responder.maxBodyBytes } ?? false
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch state {
        case .idle:
            guard case .head(let head) = part else {
                context.fireChannelRead(data)
                return
            }
            if head.headerFields.first(.expect)?.lowercased() == "100-continue", !declaresTooLarge(head) {
                // Every body is read whole before the call goes upstream (as nginx buffers it): the
                // client is told to send it now rather than after its own wait (curl's is 1 s, for
                // bodies over 1 MB — a prompt with an image). One over the limit gets its 413 instead.
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
            }
            if let (route, proxyKeyName) = intercept(head) {
                state = .collecting(
                    Collecting(
                        head: head, route: route, proxyKeyName: proxyKeyName, body: ByteBuffer(),
                        start: CallObservation.now(), createdAt: Date().timeIntervalSince1970))
            } else {
                state = .passing(requestEnded: false, responseEnded: false)
                context.fireChannelRead(data)
            }
        case .collecting(var collecting):
            switch part {
            case .head:
                // The codec never starts a request inside another; treat it as a broken connection.
                context.close(promise: nil)
            case .body(let chunk):
                state = .idle  // no second reference to the body while it grows
                if collecting.body.readableBytes + chunk.readableBytes > responder.maxBodyBytes {
                    // Over the limit without a declared length: Hummingbird reads the rest and answers 413.
                    state = .passing(requestEnded: false, responseEnded: false)
                    context.fireChannelRead(wrapInboundOut(.head(collecting.head)))
                    context.fireChannelRead(wrapInboundOut(.body(collecting.body)))
                    context.fireChannelRead(data)
                    return
                }
                if collecting.body.readableBytes == 0 {
                    collecting.body = chunk  // most bodies come in one read: no copy
                } else {
                    collecting.body.writeImmutableBuffer(chunk)
                }
                state = .collecting(collecting)
            case .end:
                forward(collecting, context: context)
            }
        case .forwarding:
            pending.append(part)
        case .passing(let requestEnded, let responseEnded):
            if requestEnded {
                pending.append(part)
                return
            }
            if case .end = part {
                if responseEnded {
                    state = .idle
                    context.fireChannelRead(data)
                    replayPending(context: context)
                    return
                }
                state = .passing(requestEnded: true, responseEnded: false)
            }
            context.fireChannelRead(data)
        }
    }

    /// Hummingbird's writes: its response's end lets the next request in.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .passing(let requestEnded, _) = state, case .end = unwrapOutboundIn(data) {
            context.write(data, promise: promise)
            if requestEnded {
                state = .idle
                replayPending(context: context)
            } else {
                state = .passing(requestEnded: false, responseEnded: true)
            }
            return
        }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .forwarding(let tee) = state { tee.clientLeft() }
        context.fireChannelInactive()
    }

    /// Reads held back while a response was written, taken in order now. Called from a write
    /// or an upstream callback, so it ends the read itself: Hummingbird's channel hands reads
    /// to its request loop on `channelReadComplete`.
    private func replayPending(context: ChannelHandlerContext) {
        guard !pending.isEmpty else { return }
        let parts = pending
        pending = []
        for part in parts { channelRead(context: context, data: wrapInboundOut(part)) }
        context.fireChannelReadComplete()
    }

    /// Graceful shutdown: Hummingbird closes a connection it sees idle at once, so while a
    /// call of this handler is in flight the event waits, and the connection closes after it.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            switch state {
            case .collecting, .forwarding:
                quiescing = true
                return
            case .idle, .passing:
                break
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func forward(_ collecting: Collecting, context: ChannelHandlerContext) {
        let prepared = CallObservation.now()  // the body is in: from here on, the time is llmtap's own
        let call = responder.outgoing(
            route: collecting.route, headers: collecting.head.headerFields, body: collecting.body,
            proxyKeyName: collecting.proxyKeyName)
        let keepAlive = collecting.head.headerFields.first(.connection)?.lowercased() != "close"
        // The record is made once the request is on its way (`buildRecord`): its id, the
        // caller's headers and key fingerprint are not on the path to the first byte. A
        // callback that needs it sooner (a call failed at once) makes it then.
        let tee = UpstreamTee(
            handler: self, context: context, sink: responder.sink, pricing: responder.pricing,
            record: { [responder, remoteAddress = context.channel.remoteAddress] in
                responder.record(
                    of: call, route: collecting.route, headers: collecting.head.headerFields,
                    remoteAddress: remoteAddress, proxyKeyName: collecting.proxyKeyName, createdAt: collecting.createdAt)
            },
            start: collecting.start, route: collecting.route, facts: call.facts, keepAlive: keepAlive,
            logger: responder.logger)
        state = .forwarding(tee)
        responder.sink.metrics.upstreamStarted()
        tee.requestSide = CallObservation.now() &- prepared
        tee.call = responder.clients.pool(on: context.eventLoop).execute(
            url: collecting.route.url, address: collecting.route.address,
            method: HTTPMethod(rawValue: collecting.head.method.rawValue),
            headers: call.headers, body: call.sendsBody ? call.body : nil, delegate: tee)
        tee.buildRecord()
    }

    /// The call `tee` answered is over: the connection takes its next request.
    fileprivate func finished(_ tee: UpstreamTee, context: ChannelHandlerContext) {
        guard case .forwarding(let current) = state, current === tee else { return }
        state = .idle
        if !tee.keepAlive || quiescing {
            // After the response's last write: a close drops writes still queued.
            let written = tee.ended ?? context.eventLoop.makeSucceededVoidFuture()
            written.whenComplete { _ in context.close(promise: nil) }
            return
        }
        replayPending(context: context)
    }
}

/// One proxied call's response: written to the client as each upstream read arrives, then
/// observed for the record, which goes to the Recorder when the call ends, however it ends.
/// Every callback runs on the client connection's event loop.
final class UpstreamTee: UpstreamResponseDelegate, @unchecked Sendable {
    private let handler: ProxyChannelHandler
    private let context: ChannelHandlerContext
    private let sink: CallSink
    private let pricing: PricingTable
    /// The call's record so far, made by `makeRecord` on first use (`buildRecord`).
    private var record: CallRecord {
        if let built { return built }
        let made = makeRecord!()
        built = made
        makeRecord = nil
        return made
    }
    private var built: CallRecord?
    private var makeRecord: (() -> CallRecord)?
    private let start: UInt64
    private let route: Route
    private let facts: RequestFacts
    private let logger: Logger
    let keepAlive: Bool
    /// llmtap's own time before the call went upstream (`llmtap_overhead_seconds`).
    var requestSide: UInt64 = 0
    var call: UpstreamCall?
    /// The write of the response's end, once issued.
    private(set) var ended: EventLoopFuture<Void>?
    /// The latest body write.
    private var lastWrite: EventLoopFuture<Void>?
    /// Body bytes read in this turn of the event loop after the first ones, and the promise of
    /// their write: they go down the pipeline as one part when the loop turn ends
    /// (`scheduleFlush`), not one part per upstream read.
    private var pending: ByteBuffer?
    private var pendingWritten: EventLoopPromise<Void>?

    private var observation: CallObservation?
    private var filter: OpenAIChat.UsageChunkFilter?
    private var status = 0
    private var flushScheduled = false
    private var overheadPending = true
    private var clientGone = false
    private var done = false

    init(
        handler: ProxyChannelHandler, context: ChannelHandlerContext, sink: CallSink, pricing: PricingTable,
        record: @escaping () -> CallRecord, start: UInt64, route: Route, facts: RequestFacts, keepAlive: Bool,
        logger: Logger
    ) {
        self.handler = handler
        self.context = context
        self.sink = sink
        self.pricing = pricing
        makeRecord = record
        self.start = start
        self.route = route
        self.facts = facts
        self.keepAlive = keepAlive
        self.logger = logger
    }

    /// Makes the call's record now, if nothing needed it yet.
    func buildRecord() {
        _ = record
    }

    /// The client closed its connection: the upstream call is cancelled and recorded as such.
    func clientLeft() {
        clientGone = true
        call?.cancel()
    }

    private func write(_ part: HTTPResponsePart, flush: Bool, promise: EventLoopPromise<Void>? = nil) {
        let data = NIOAny(part)
        if flush { context.writeAndFlush(data, promise: promise) } else { context.write(data, promise: promise) }
    }

    /// One write and one flush for the body bytes of this turn of the event loop: the events
    /// an upstream read brings (the HTTP decoder hands them over one by one) leave together as
    /// soon as the loop is done reading — one trip down the pipeline, one HTTP chunk, one
    /// `writev` — not one each (a 20-event stream spent ~25 % of its loop time writing).
    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.execute { [self] in
            flushScheduled = false
            writePending()
            context.flush()
        }
    }

    /// Bytes that arrive after the first ones wait for the end of the loop turn (`pending`).
    private func enqueue(_ bytes: ByteBuffer) {
        if pending == nil {
            pending = bytes
            let promise = context.eventLoop.makePromise(of: Void.self)
            pendingWritten = promise
            lastWrite = promise.futureResult
        } else {
            pending!.writeImmutableBuffer(bytes)
        }
        scheduleFlush()
    }

    /// Writes what waits in `pending`, before anything written after it (unflushed).
    private func writePending() {
        guard let bytes = pending else { return }
        pending = nil
        write(.body(bytes), flush: false, promise: pendingWritten)
        pendingWritten = nil
    }

    /// Hands the ended call to the recorder, which parses, prices and records it on its own
    /// thread, not this event loop.
    private func handOver(
        _ observation: CallObservation, outcome: CallRecord.Outcome, error: (type: String, message: String)? = nil
    ) {
        let end = CallObservation.now()
        let status = status
        sink.submit(bytes: record.requestBody.count + observation.responseByteCount, on: context.eventLoop) {
            var observation = observation
            return observation.finish(outcome: outcome, status: status, error: error, end: end)
        }
    }

    private func writeEnd() {
        let promise = context.eventLoop.makePromise(of: Void.self)
        write(.end(nil), flush: true, promise: promise)
        ended = promise.futureResult
    }

    private func observeOverhead(since arrival: UInt64?) {
        guard overheadPending else { return }
        overheadPending = false
        let responseSide = arrival.map { CallObservation.now() &- $0 } ?? 0
        sink.metrics.observeOverhead(seconds: Double(requestSide &+ responseSide) / 1e9)
    }

    func upstreamHead(_ head: HTTPResponseHead) {
        let contentType = head.headers.first(name: "content-type")?.lowercased() ?? ""
        let isEventStream =
            contentType.hasPrefix("text/event-stream") || contentType.hasPrefix("application/x-ndjson")
        let contentEncoding = head.headers.first(name: "content-encoding")
        let rewrite = record.usageInjected && isEventStream && contentEncoding == nil
        status = Int(head.status.code)
        observation = CallObservation(
            record: record, start: start, route: route, requestFacts: facts, pricing: pricing,
            contentType: contentType, contentEncoding: contentEncoding, deferParsing: true)
        filter = rewrite ? OpenAIChat.UsageChunkFilter() : nil
        if !clientGone {
            let response = HTTPResponse(
                status: .init(code: status, reasonPhrase: head.status.reasonPhrase),
                headerFields: HeaderPolicy.clientHeaders(from: head.headers, bodyRewritten: rewrite))
            write(.head(response), flush: false)
            // A stream's head goes out now (its first event may be seconds away); a document's
            // head waits for its body, to leave in one write.
            if isEventStream { scheduleFlush() }
        }
    }

    func upstreamBody(_ buffer: ByteBuffer) -> EventLoopFuture<Void>? {
        let arrival = CallObservation.now()
        let forward = filter != nil ? filter!.process(buffer) : buffer
        if !clientGone, forward.readableBytes > 0 {
            if overheadPending {
                // The first bytes leave at once (time to first token); later ones once per loop turn.
                let promise = context.eventLoop.makePromise(of: Void.self)
                write(.body(forward), flush: true, promise: promise)
                promise.futureResult.whenSuccess { [self] in observeOverhead(since: arrival) }
                lastWrite = promise.futureResult
            } else {
                enqueue(forward)
            }
        }
        observation?.received(buffer, at: arrival)
        // While the client takes the bytes, the next read comes at once; when its connection's
        // buffer is full, the next read waits for the latest write — also when this read wrote
        // nothing (the usage filter holds the start of an event): a slow client slows the upstream.
        return context.channel.isWritable ? nil : lastWrite
    }

    func upstreamEnd() {
        guard !done, let observation else { return }
        done = true
        if !clientGone {
            writePending()
            if let rest = filter?.finish(), rest.readableBytes > 0 { write(.body(rest), flush: false) }
            writeEnd()
        }
        observeOverhead(since: nil)  // an empty body: the request side only
        let outcome: CallRecord.Outcome = clientGone ? .clientCancelled : (status >= 400 ? .upstreamError : .ok)
        handOver(observation, outcome: outcome)
        handler.finished(self, context: context)
    }

    func upstreamFailed(_ error: Error) {
        guard !done else { return }
        guard let observation else {
            failedBeforeResponse(error)
            return
        }
        done = true
        // The upstream failed mid-body (the client gets the same cut), or the client left.
        let outcome: CallRecord.Outcome =
            clientGone ? .clientCancelled : (ProxyResponder.isTimeout(error) ? .timeout : .upstreamError)
        handOver(observation, outcome: outcome, error: outcome == .clientCancelled ? nil : ("upstream_interrupted", "\(error)"))
        if !clientGone {
            // The client gets every byte the upstream sent — a partial event the usage filter was
            // holding included — then the same cut: a close drops writes still queued.
            writePending()
            if let rest = filter?.finish(), rest.readableBytes > 0 {
                let promise = context.eventLoop.makePromise(of: Void.self)
                write(.body(rest), flush: false, promise: promise)
                lastWrite = promise.futureResult
            }
            context.flush()
            (lastWrite ?? context.eventLoop.makeSucceededVoidFuture()).whenComplete { [context] _ in
                context.close(promise: nil)
            }
        }
        handler.finished(self, context: context)
    }

    /// No response at all: the record says why, and the client gets llmtap's own 502 or 504.
    func failedBeforeResponse(_ error: Error) {
        guard !done else { return }
        done = true
        let answer = ProxyResponder.recordUnanswered(
            error, record: record, start: start, route: route, facts: facts, pricing: pricing, sink: sink,
            clientLeft: clientGone, logger: logger)
        if !clientGone {
            let body = answer.body
            var fields = HTTPFields()
            fields[.contentType] = "application/json"
            fields[.contentLength] = String(body.readableBytes)
            write(.head(HTTPResponse(status: answer.status, headerFields: fields)), flush: false)
            write(.body(body), flush: false)
            writeEnd()
        }
        handler.finished(self, context: context)
    }
}
