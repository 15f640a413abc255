import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import LLMTapCore
import LLMTapStore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The two listeners of `llmtap serve`.
public enum Listener: Sendable {
    case proxy, api
}

/// A built llmtap daemon: its services in start order (recorder, upstream
/// client, query API, proxy). On graceful shutdown they stop in reverse: the
/// proxy stops taking calls and finishes the ones in flight, and the recorder
/// writes everything queued last.
public struct LLMTapApplication: Sendable {
    public let configuration: LLMTapConfiguration
    public let recorder: Recorder
    public let services: [any Service]
    let logger: Logger

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    public func run() async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Builds the daemon from a configuration: opens and migrates the database, loads
/// prices, and wires the proxy and the query API. Tests call it with ports 0 and
/// learn the real ports from `onListening`.
public func buildApplication(
    _ configuration: LLMTapConfiguration,
    logger: Logger = Logger(label: "llmtap"),
    onListening: @escaping @Sendable (Listener, Int) async -> Void = { _, _ in }
) throws -> LLMTapApplication {
    var pricing = try PricingTable.bundled()
    if let file = configuration.pricingFile {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigurationError("cannot read the pricing file \(file)")
        }
        pricing = pricing.merging(try PricingTable.decode(data))
    }
    if configuration.apiToken == nil, !isLoopback(configuration.apiHost) {
        throw ConfigurationError(
            "refusing to serve the query API on \(configuration.apiHost) without --api-token: it shows every prompt")
    }
    // Everything is checked before anything (database, client) is opened.
    let retention = try configuration.retain.map { retain in
        guard let period = RetentionPeriod.seconds(retain) else {
            throw ConfigurationError("--retain takes a duration like 90d, 12h or 30m, not '\(retain)'")
        }
        return period
    }
    let payloadRetention = try configuration.retainPayloads.map { retain in
        guard let period = RetentionPeriod.seconds(retain) else {
            throw ConfigurationError("--retain-payloads takes a duration like 14d, 12h or 30m, not '\(retain)'")
        }
        return period
    }
    // A provider key goes upstream as a header value, which the upstream pipeline does not check
    // on every request (`UpstreamPool`): one with a line break would split the request's head.
    for (provider, key) in configuration.providerKeys.sorted(by: { $0.key < $1.key }) where !HTTPField.isValidValue(key) {
        throw ConfigurationError(
            "the \(provider) provider key holds a character a header cannot carry (a line break?): check \(provider.uppercased())_API_KEY")
    }
    let redactor: Redactor?
    do {
        redactor = configuration.redactions.isEmpty ? nil : try Redactor(configuration.redactions)
    } catch {
        throw ConfigurationError("\(error)")
    }
    let store = try Store(path: configuration.databasePath, fullSync: configuration.durability == .sync)
    let spool = Spool(path: configuration.spoolPath, maxBytes: configuration.spoolMaxBytes)
    let recorder = Recorder(store: store, spool: spool, configuration: configuration.recorder, logger: logger)
    let clients = UpstreamClients(configuration: upstreamClientConfiguration(configuration))
    let metrics = LLMTapMetrics(recorder: recorder)
    let limits = ConnectionLimits(
        maxConnections: configuration.maxConnections,
        headerTimeout: .nanoseconds(Int64(configuration.clientHeaderTimeout.nanoseconds)),
        bodyTimeout: .nanoseconds(Int64(configuration.clientBodyTimeout.nanoseconds)))
    var spans: (CallSpans, any Service)?
    if let endpoint = configuration.otlpEndpoint {
        spans = try CallSpans.make(
            endpoint: endpoint, protocol: CallSpans.OTLPProtocol(rawValue: configuration.otlpProtocol) ?? .httpProtobuf,
            flushInterval: configuration.otlpFlushInterval)
    }

    // `LLMTAP_PROXY_PATH=hummingbird` answers every call through Hummingbird's responder, as
    // before the event-loop hot path existed: for A/B runs of one binary (Benchmarks/README.md).
    let frameworkPathOnly = ProcessInfo.processInfo.environment["LLMTAP_PROXY_PATH"] == "hummingbird"
    let responder = ProxyResponder(
        routes: Routes(providers: configuration.providers, defaultUpstream: configuration.upstream),
        clients: clients,
        sink: CallSink(
            recorder: recorder, metrics: metrics, spans: spans?.0, redactor: redactor,
            sync: configuration.durability == .sync),
        pricing: pricing,
        fingerprinter: try KeyFingerprinter(secretPath: configuration.fingerprintKeyPath),
        maxBodyBytes: configuration.maxBodyBytes, injectUsage: configuration.injectUsage,
        aliases: configuration.aliases, providerKeys: configuration.providerKeys,
        proxyKeys: ProxyKeys(configuration.proxyKeys), logger: logger)
    let proxy = Application(
        responder: responder,
        server: .http1(
            configuration: .init(additionalChannelHandlers: [
                ClientHangUpHandler(), ConnectionGuard(limits: limits, counter: metrics.connections),
            ] + (frameworkPathOnly ? [] : [ProxyChannelHandler(responder: responder)]))),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
        onServerRunning: { channel in await onListening(.proxy, channel.localAddress?.port ?? 0) },
        logger: logger
    )
    let api = Application(
        router: buildQueryRouter(
            recorder: recorder, metrics: metrics, apiToken: configuration.apiToken,
            corsOrigins: configuration.corsOrigins),
        configuration: .init(address: .hostname(configuration.apiHost, port: configuration.apiPort), serverName: nil),
        onServerRunning: { channel in await onListening(.api, channel.localAddress?.port ?? 0) },
        logger: logger
    )
    Allocator.configure()  // freed memory goes back after a second, not jemalloc's ten
    let purger = AllocatorPurgeService(
        activity: {
            let stats = recorder.stats
            return stats.written + stats.queued + stats.spooled + stats.dropped
        }, logger: logger)
    var services: [any Service] = [recorder, purger, HTTPClientService(clients: clients), api, proxy]
    // Stopped in reverse order: the proxy first, the span exporter's last batch before the recorder's.
    if let spans { services.insert(spans.1, at: 1) }
    if retention != nil || payloadRetention != nil {
        services.insert(RetentionService(store: store, calls: retention, payloads: payloadRetention, logger: logger), at: 1)
    }
    return LLMTapApplication(configuration: configuration, recorder: recorder, services: services, logger: logger)
}

func upstreamClientConfiguration(_ configuration: LLMTapConfiguration) -> HTTPClient.Configuration {
    var client = HTTPClient.Configuration(
        redirectConfiguration: .disallow,
        timeout: .init(
            connect: .nanoseconds(Int64(configuration.connectTimeout.nanoseconds)),
            read: .nanoseconds(Int64(configuration.readTimeout.nanoseconds))),
        connectionPool: .init(
            idleTimeout: .nanoseconds(Int64(configuration.upstreamIdleTimeout.nanoseconds)),
            concurrentHTTP1ConnectionsPerHostSoftLimit: 256),
        decompression: .disabled  // responses pass through encoded; llmtap decodes a copy for parsing
    )
    client.httpVersion = .automatic
    // A refused connection is answered (502) at once rather than retried until the connect timeout.
    client.connectionPool.retryConnectionEstablishment = false
    return client
}

func isLoopback(_ host: String) -> Bool {
    host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
}

/// The upstream HTTP clients, one per event loop of the server: a call goes upstream on a
/// connection of the loop its client connection is served on, so the upstream's bytes arrive
/// on the thread that writes them to the client. With one shared client a pooled upstream
/// connection may live on the other loop, and every read and write of the call then crosses
/// threads (measured: p50 ~0.75 ms instead of ~0.4 ms at one connection, by chance of loop).
final class UpstreamClients: Sendable {
    let all: [HTTPClient]
    private let byLoop: [ObjectIdentifier: HTTPClient]
    /// The proxy hot path's own client (`UpstreamPool`), one per loop.
    let pools: [UpstreamPool]
    private let poolByLoop: [ObjectIdentifier: UpstreamPool]

    init(group: MultiThreadedEventLoopGroup = .singleton, configuration: HTTPClient.Configuration) {
        var all: [HTTPClient] = []
        var byLoop: [ObjectIdentifier: HTTPClient] = [:]
        var pools: [UpstreamPool] = []
        var poolByLoop: [ObjectIdentifier: UpstreamPool] = [:]
        var poolConfiguration = UpstreamPool.Configuration()
        if let connect = configuration.timeout.connect { poolConfiguration.connectTimeout = connect }
        if let read = configuration.timeout.read { poolConfiguration.readTimeout = read }
        poolConfiguration.idleTimeout = configuration.connectionPool.idleTimeout
        for loop in group.makeIterator() {
            let client = HTTPClient(eventLoopGroupProvider: .shared(loop), configuration: configuration)
            all.append(client)
            byLoop[ObjectIdentifier(loop)] = client
            let pool = UpstreamPool(loop: loop, configuration: poolConfiguration)
            pools.append(pool)
            poolByLoop[ObjectIdentifier(loop)] = pool
        }
        self.all = all
        self.byLoop = byLoop
        self.pools = pools
        self.poolByLoop = poolByLoop
    }

    /// The client whose connections live on `loop` (the first client for a loop of another group).
    func client(on loop: any EventLoop) -> HTTPClient {
        byLoop[ObjectIdentifier(loop)] ?? all[0]
    }

    /// The hot path's pool of `loop` (for a loop of another group, a pool that keeps nothing).
    func pool(on loop: any EventLoop) -> UpstreamPool {
        if let pool = poolByLoop[ObjectIdentifier(loop)] { return pool }
        var configuration = pools[0].configuration
        configuration.maxIdlePerTarget = 0
        return UpstreamPool(loop: loop, configuration: configuration)
    }
}

/// Shuts the upstream clients down after the listeners have stopped.
struct HTTPClientService: Service {
    let clients: UpstreamClients

    func run() async throws {
        try? await gracefulShutdown()
        for pool in clients.pools { try? await pool.loop.submit { pool.shutdown() }.get() }
        for client in clients.all { try await client.shutdown() }
    }
}

extension Duration {
    var nanoseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
    }
}
