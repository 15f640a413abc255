import Hummingbird
import NIOCore

/// The request context of the proxy listener: Hummingbird's core context plus the client's address.
struct ProxyRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?
    /// Completes when the client's connection closes: a stream waiting on a silent
    /// upstream learns of a client that hung up from this, not from its next write.
    let clientClosed: EventLoopFuture<Void>

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        clientClosed = source.channel.closeFuture
    }
}
