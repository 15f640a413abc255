import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// What an upstream connection tells the call it carries (`UpstreamTee`), on its event loop.
protocol UpstreamResponseDelegate: AnyObject {
    func upstreamHead(_ head: HTTPResponseHead)
    /// A future to wait for before the next read (the client's connection is full: a slow
    /// client slows the upstream), or nil to read on.
    func upstreamBody(_ buffer: ByteBuffer) -> EventLoopFuture<Void>?
    func upstreamEnd()
    /// The call failed; errors are AsyncHTTPClient's (`HTTPClientError`) where one fits, so a
    /// failure is classified the same on either path (`ProxyResponder.classify`).
    func upstreamFailed(_ error: Error)
}

/// Where a call goes: a connection to one of these serves any call to it.
struct UpstreamTarget: Hashable, Sendable {
    var tls: Bool
    var host: String
    var port: Int

    /// `scheme://host[:port]` and the path with its query, from a route's URL; nil for a URL
    /// this client does not speak (a scheme other than http or https, no host).
    static func parse(_ url: String) -> (target: UpstreamTarget, path: String)? {
        let tls: Bool
        var rest: Substring
        if url.hasPrefix("http://") {
            (tls, rest) = (false, url.dropFirst(7))
        } else if url.hasPrefix("https://") {
            (tls, rest) = (true, url.dropFirst(8))
        } else {
            return nil
        }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        rest = rest[authorityEnd...]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var host = authority
        var port = tls ? 443 : 80
        if authority.hasPrefix("[") {  // [IPv6]:port
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let given = Int(after.dropFirst()) else { return nil }
                port = given
            }
        } else if let colon = authority.lastIndex(of: ":") {
            guard let given = Int(authority[authority.index(after: colon)...]) else { return nil }
            host = authority[..<colon]
            port = given
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        if let fragment = rest.firstIndex(of: "#") { rest = rest[..<fragment] }
        let path = rest.hasPrefix("/") ? String(rest) : "/" + rest
        return (UpstreamTarget(tls: tls, host: String(host), port: port), path)
    }

    /// The `Host` header: the port only when it is not the scheme's own.
    var hostHeader: String {
        let name = host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]" : host  // not Foundation's `contains`, a substring search through CFString
        return port == (tls ? 443 : 80) ? name : "\(name):\(port)"
    }
}

/// The proxy hot path's upstream HTTP/1.1 client: keep-alive connections to each upstream,
/// pooled per event loop, each carrying one call at a time.
///
/// Why not AsyncHTTPClient, which the rest of llmtap uses: measured at 32 concurrent calls, its
/// request scheduling (pool manager, request bag, state machines) and per-part delivery were
/// ~60 % of an event loop's time, and it sends a request's head and body in two writes (an idle
/// upstream wakes twice). A proxy needs little of what it does — no redirects, no
/// decompression, no HTTP/2, no proxies: one connection per call in flight, the request
/// written with one flush, the response handed over read by read with backpressure, a connect
/// timeout and a read timeout. Calls that go through Hummingbird (`--durability sync`, the
/// engine route) still use AsyncHTTPClient.
///
/// Confined to its event loop: every method runs on `loop`.
final class UpstreamPool: @unchecked Sendable {
    struct Configuration: Sendable {
        var connectTimeout: TimeAmount = .seconds(10)
        /// Longest upstream silence while a call waits for its response.
        var readTimeout: TimeAmount = .seconds(600)
        /// An unused connection closes after this long.
        var idleTimeout: TimeAmount = .seconds(60)
        /// Unused connections kept per upstream; more close when their call ends.
        var maxIdlePerTarget = 256
    }

    let loop: any EventLoop
    let configuration: Configuration
    private var idle: [UpstreamTarget: [UpstreamConnection]] = [:]
    private var tlsContext: Result<NIOSSLContext, any Error>?
    private var closed = false

    init(loop: any EventLoop, configuration: Configuration) {
        self.loop = loop
        self.configuration = configuration
    }

    /// Sends a call: on an unused connection to its upstream if there is one, else on a new one.
    /// A URL this client cannot send to fails the call at once.
    /// - Parameter address: `url` already read (`Route.address`); else `url` is read here.
    func execute(
        url: String, address: UpstreamAddress? = nil, method: HTTPMethod, headers: HTTPHeaders, body: ByteBuffer?,
        delegate: any UpstreamResponseDelegate
    ) -> UpstreamCall {
        loop.preconditionInEventLoop()
        let call = UpstreamCall(delegate: delegate)
        guard let (target, path) = address.map({ ($0.target, $0.path) }) ?? UpstreamTarget.parse(url) else {
            call.fail(HTTPClientError.invalidURL)
            return call
        }
        var headers = headers
        headers.replaceOrAdd(name: "host", value: target.hostHeader)
        if let body {
            headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
        }
        call.request = (target, HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers), body)
        send(call, reuse: true)
        return call
    }

    /// Sends on a pooled connection (`reuse`) or a new one. A pooled connection the upstream
    /// closed while it sat unused fails before any byte of a response: that call is sent again,
    /// once, on a new connection (`UpstreamConnection.channelInactive`).
    fileprivate func send(_ call: UpstreamCall, reuse: Bool) {
        guard let (target, _, _) = call.request, !call.isOver else { return }
        if reuse, let connection = takeIdle(target) {
            connection.start(call, reused: true)
            return
        }
        connect(target).whenComplete { [self] result in
            switch result {
            case .success(let connection):
                if call.isOver {
                    connection.close()  // cancelled while connecting
                } else {
                    connection.start(call, reused: false)
                }
            case .failure(let error):
                call.fail(Self.describe(error))
            }
        }
    }

    private func takeIdle(_ target: UpstreamTarget) -> UpstreamConnection? {
        while let connection = idle[target]?.popLast() {
            if connection.isUsable { return connection }
        }
        return nil
    }

    /// A connection whose call ended cleanly: kept for the next call, or closed.
    fileprivate func release(_ connection: UpstreamConnection) {
        guard !closed, connection.isUsable, idle[connection.target, default: []].count < configuration.maxIdlePerTarget
        else {
            connection.close()
            return
        }
        idle[connection.target, default: []].append(connection)
        connection.becameIdle()
    }

    /// A connection that closed: out of the pool.
    fileprivate func remove(_ connection: UpstreamConnection) {
        idle[connection.target]?.removeAll { $0 === connection }
    }

    private func connect(_ target: UpstreamTarget) -> EventLoopFuture<UpstreamConnection> {
        var tls: NIOSSLContext?
        if target.tls {
            if tlsContext == nil {
                // Created once per loop: loading the trust roots takes milliseconds.
                tlsContext = Result {
                    var configuration = TLSConfiguration.makeClientConfiguration()
                    configuration.applicationProtocols = ["http/1.1"]
                    return try NIOSSLContext(configuration: configuration)
                }
            }
            switch tlsContext! {
            case .success(let context): tls = context
            case .failure(let error): return loop.makeFailedFuture(error)
            }
        }
        let connection = UpstreamConnection(pool: self, target: target)
        return ClientBootstrap(group: loop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handlers = channel.pipeline.syncOperations
                    if let tls {
                        // Server name indication for a name, not for an address.
                        let isAddress = (try? SocketAddress(ipAddress: target.host, port: 0)) != nil
                        try handlers.addHandler(
                            NIOSSLClientHandler(context: tls, serverHostname: isAddress ? nil : target.host))
                    }
                    // No per-request check of header names and values (NIO's validator, ~1 % of
                    // llmtap's CPU at 32 connections): what goes upstream is the client's fields,
                    // which HTTPTypes holds legal (a line break or NUL becomes a space), the host
                    // and length set here, and a provider key, checked once when llmtap starts.
                    try handlers.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    try handlers.addHandler(connection)
                }
            }
            .connect(host: target.host, port: target.port)
            .map { _ in connection }
    }

    /// Connect failures as AsyncHTTPClient reports them, so they are classified alike.
    private static func describe(_ error: any Error) -> any Error {
        if let error = error as? ChannelError, case .connectTimeout = error { return HTTPClientError.connectTimeout }
        return error
    }

    /// Closes the unused connections; calls in flight end on their own.
    func shutdown() {
        loop.preconditionInEventLoop()
        closed = true
        let connections = idle.values.joined()
        idle = [:]
        for connection in connections { connection.close() }
    }
}

/// One call's handle: `cancel` ends it (the client left). It holds its delegate until the
/// call is over.
final class UpstreamCall: @unchecked Sendable {
    fileprivate var delegate: (any UpstreamResponseDelegate)?
    fileprivate var request: (target: UpstreamTarget, head: HTTPRequestHead, body: ByteBuffer?)?
    fileprivate var connection: UpstreamConnection?
    /// Ended: answered, failed or cancelled. Nothing more reaches the delegate.
    fileprivate private(set) var isOver = false

    fileprivate init(delegate: any UpstreamResponseDelegate) {
        self.delegate = delegate
    }

    /// Stops the call: its connection closes (a half-read response cannot be reused) and the
    /// delegate hears `HTTPClientError.cancelled`.
    func cancel() {
        guard !isOver else { return }
        let connection = connection
        fail(HTTPClientError.cancelled)
        connection?.close()
    }

    fileprivate func fail(_ error: any Error) {
        guard !isOver, let delegate else { return }
        over()
        delegate.upstreamFailed(error)
    }

    fileprivate func end() {
        guard !isOver, let delegate else { return }
        over()
        delegate.upstreamEnd()
    }

    private func over() {
        isOver = true
        connection = nil
        delegate = nil
        request = nil
    }
}

/// The last handler of an upstream connection's pipeline, after NIO's HTTP/1.1 client codec.
private final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    let target: UpstreamTarget
    private unowned let pool: UpstreamPool
    private var context: ChannelHandlerContext?
    private var call: UpstreamCall?
    private var reused = false
    private var answered = false
    private var keepAlive = true
    /// A body part's write to the client is pending: the next read waits (`read`).
    private var waiting = false
    private var readHeld = false
    private var lastRead = NIODeadline.now()
    /// When the connection, kept unused in the pool, is closed.
    private var idleUntil: NIODeadline?
    /// One timer for the read timeout (a call in flight) and the idle timeout (in the pool).
    /// Set no later than one idle timeout ahead when a call starts, it needs no moving when the
    /// call ends (two timers were scheduled and two cancelled a call).
    private var timer = DeadlineTimer()

    init(pool: UpstreamPool, target: UpstreamTarget) {
        self.pool = pool
        self.target = target
    }

    var isUsable: Bool { context?.channel.isActive ?? false }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func close() {
        timer.stop()
        context?.close(promise: nil)
    }

    func start(_ call: UpstreamCall, reused: Bool) {
        guard let context, let request = call.request else { return }
        idleUntil = nil
        self.call = call
        self.reused = reused
        call.connection = self
        answered = false
        keepAlive = true
        lastRead = .now()
        setTimer(at: lastRead + min(pool.configuration.readTimeout, pool.configuration.idleTimeout))
        context.write(wrapOutboundOut(.head(request.head)), promise: nil)
        if let body = request.body, body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let call else {
            context.close(promise: nil)  // a response nobody asked for: the connection is not reused
            return
        }
        lastRead = .now()
        switch unwrapInboundIn(data) {
        case .head(let head):
            if (100..<200).contains(head.status.code), head.status != .switchingProtocols { return }  // informational
            answered = true
            keepAlive = head.isKeepAlive
            call.request = nil  // never sent again: the body can go
            call.delegate?.upstreamHead(head)
        case .body(let buffer):
            guard let written = call.delegate?.upstreamBody(buffer) else { return }
            waiting = true
            written.whenComplete { [self] _ in
                waiting = false
                if readHeld {
                    readHeld = false
                    self.context?.read()
                }
            }
        case .end:
            guard answered else { return }  // the end of an informational response
            self.call = nil
            // Back in the pool before the call hears its end: a pipelined next request may take it.
            if keepAlive { pool.release(self) } else { close() }
            call.end()
        }
    }

    /// Backpressure: while a body part waits for the client's connection, the upstream is not read.
    func read(context: ChannelHandlerContext) {
        if waiting {
            readHeld = true
        } else {
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        defer { context.fireChannelInactive() }
        timer.stop()
        pool.remove(self)
        guard let call else { return }
        self.call = nil
        if reused, !answered {
            // A kept connection the upstream had closed: the request never reached it.
            call.connection = nil
            pool.send(call, reuse: false)
        } else {
            call.fail(HTTPClientError.remoteConnectionClosed)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let call, !(reused && !answered && Self.isReset(error)) {
            self.call = nil
            call.fail(error)
        }
        context.close(promise: nil)
    }

    private static func isReset(_ error: any Error) -> Bool {
        guard let error = error as? IOError else { return false }
        return [ECONNRESET, EPIPE].contains(error.errnoCode)
    }

    /// Kept unused in the pool from now: closed after the idle timeout unless a call takes it.
    func becameIdle() {
        let at = NIODeadline.now() + pool.configuration.idleTimeout
        idleUntil = at
        setTimer(at: at)
    }

    private func setTimer(at: NIODeadline) {
        guard let loop = context?.eventLoop else { return }
        timer.fire(by: at) { loop.scheduleTask(deadline: $0) { [weak self] in self?.timerFired() } }
    }

    /// The read timeout counts the upstream's silence: reset by every read, paused while the
    /// client holds the response back. The idle timeout closes a connection left unused.
    private func timerFired() {
        timer.fired()
        let now = NIODeadline.now()
        if let call {
            let timeout = pool.configuration.readTimeout
            if waiting || now - lastRead < timeout {
                // No later than an idle timeout ahead: the call's end then needs no earlier timer.
                setTimer(at: min(waiting ? now + timeout : lastRead + timeout, now + pool.configuration.idleTimeout))
                return
            }
            self.call = nil
            call.fail(HTTPClientError.readTimeout)
            close()
        } else if let idleUntil {
            if now >= idleUntil { close() } else { setTimer(at: idleUntil) }
        }
    }
}
