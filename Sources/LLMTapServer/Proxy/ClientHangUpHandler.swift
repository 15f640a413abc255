import NIOCore

/// Closes a client connection whose input side ends (the client sent FIN).
///
/// Hummingbird allows half-closed connections and reads the socket only when it
/// wants the next request, so a client that hangs up while llmtap waits on a slow
/// upstream would otherwise go unnoticed until the next chunk is written. An HTTP
/// client never half-closes while it still wants the answer (nginx treats it the
/// same way, as a client abort), so closing here is safe, and it completes the
/// channel's `closeFuture` that a stream in flight watches.
final class ClientHangUpHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any
    typealias InboundOut = Any

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }
}
