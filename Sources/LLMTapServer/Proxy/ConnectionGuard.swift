import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTPTypes
import Synchronization

/// Limits on client connections that Hummingbird leaves to the application.
///
/// - **How many**: beyond `maxConnections` open connections, a new one gets its request
///   answered `503` (OpenAI's error shape, `connection: close`) instead of holding a slot.
///   Hummingbird's `MaximumAvailableConnections` stops accepting instead, which leaves
///   clients hanging in the listen backlog with no answer.
/// - **How slowly**: a request's head must arrive within `headerTimeout` of the connection
///   opening or of the previous response ending (this also closes idle keep-alive
///   connections), and its body within `bodyTimeout` of the head; otherwise the connection
///   is closed. A slow-loris client that trickles bytes keeps no connection for long —
///   Hummingbird's idle timeout alone resets on every byte.
struct ConnectionLimits: Sendable {
    var maxConnections = 4096
    var headerTimeout: TimeAmount = .seconds(30)
    var bodyTimeout: TimeAmount = .seconds(120)
}

/// Open client connections, shared by every connection's guard.
final class ConnectionCounter: Sendable {
    private let open = Atomic<Int>(0)
    /// Connections refused with 503 since start.
    let refused = Atomic<Int>(0)

    var current: Int { open.load(ordering: .relaxed) }

    /// Counts a new connection in; false when it is one too many.
    func enter(limit: Int) -> Bool {
        open.wrappingAdd(1, ordering: .relaxed).newValue <= limit
    }

    func leave() { open.wrappingSubtract(1, ordering: .relaxed) }
}

/// One connection's guard; sits after the HTTP codec, so it sees whole request heads.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let limits: ConnectionLimits
    private let counter: ConnectionCounter
    private var admitted = true
    /// When the connection is closed unless what it awaits has come (nil: it awaits nothing).
    private var deadline: NIODeadline?
    /// Enforces `deadline`: fires at or before it, finds it moved, and is set again.
    private var timer = DeadlineTimer()

    init(limits: ConnectionLimits, counter: ConnectionCounter) {
        self.limits = limits
        self.counter = counter
    }

    func handlerAdded(context: ChannelHandlerContext) {
        admitted = counter.enter(limit: limits.maxConnections)
        context.channel.closeFuture.whenComplete { [counter] _ in counter.leave() }
        armDeadline(context: context, limits.headerTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer.stop()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard admitted else {
            if case .head = part { refuse(context: context) }
            return
        }
        switch part {
        case .head: armDeadline(context: context, limits.bodyTimeout)
        case .end: deadline = nil
        case .body: break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            // The next request's head has `headerTimeout` from the end of this response.
            armDeadline(context: context, limits.headerTimeout)
        }
        context.write(data, promise: promise)
    }

    private func armDeadline(context: ChannelHandlerContext, _ timeout: TimeAmount) {
        let at = NIODeadline.now() + timeout
        deadline = at
        setTimer(context: context, at: at)
    }

    private func setTimer(context: ChannelHandlerContext, at: NIODeadline) {
        timer.fire(by: at) { at in
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            return context.eventLoop.scheduleTask(deadline: at) {
                let (connectionGuard, context) = loopBound.value
                connectionGuard.timerFired(context: context)
            }
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer.fired()
        guard let deadline else { return }
        if deadline <= .now() {
            context.close(promise: nil)
        } else {
            setTimer(context: context, at: deadline)
        }
    }

    private func refuse(context: ChannelHandlerContext) {
        counter.refused.wrappingAdd(1, ordering: .relaxed)
        let body = ByteBuffer(
            string: #"{"error":{"message":"llmtap has too many open connections; retry shortly","type":"server_overloaded","param":null,"code":"too_many_connections"}}"#
        )
        var head = HTTPResponse(status: .serviceUnavailable)
        head.headerFields[.contentType] = "application/json"
        head.headerFields[.contentLength] = "\(body.readableBytes)"
        head.headerFields[.connection] = "close"
        head.headerFields[.retryAfter] = "1"
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in loopBound.value.close(promise: nil) }
    }
}
