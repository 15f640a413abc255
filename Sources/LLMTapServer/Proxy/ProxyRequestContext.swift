import Hummingbird
import NIOCore

/// The request context of the proxy listener: Hummingbird's core context plus the client's address.
struct ProxyRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
