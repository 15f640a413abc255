import Foundation
import LLMTapStore
import LLMTapTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A client that stops reading holds the upstream back: llmtap reads from the upstream only
/// as fast as the client takes the bytes, instead of keeping the difference in memory.
///
/// Measured on llmtap's side: an upstream that offers 256 MiB counts what the kernel took
/// from it, the kernel's own socket queues on both legs are read from `/proc/net/tcp`, and
/// what remains — bytes llmtap read from the upstream but did not hand to the client's
/// socket — is what llmtap holds in its own buffers.
struct BackpressureTests {
    static let request: String = {
        let body = #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"everything"}]}"#
        return "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + "Authorization: Bearer \(Tap.secretKey)\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
    }()

    @Test func aClientThatStopsReadingHoldsTheUpstreamBack() async throws {
        let flood = try FloodUpstream(limit: 256 << 20)
        defer { flood.stop() }
        _ = try await Tap.run(upstreamURL: "http://127.0.0.1:\(flood.port)") { tap in
            let client = try StalledClient(port: tap.proxyPort)
            defer { client.close() }
            try client.send(Self.request)
            // Wait until the upstream can hand over nothing more: its count holds still for a second.
            var last = -1
            var still = 0
            for _ in 0..<100 where still < 5 {
                try await Task.sleep(for: .milliseconds(200))
                let sent = flood.sent
                still = sent == last ? still + 1 : 0
                last = sent
            }
            let sent = flood.sent
            let inKernel = KernelQueues.bytes(ports: [flood.port, tap.proxyPort])
            let held = sent - inKernel
            #expect(sent > 1 << 20, "the upstream sent \(sent) bytes: the call did not start")
            #expect(sent < flood.limit, "the upstream sent everything: nothing held it back")
            #expect(held < 16 << 20, "llmtap holds \(held) bytes (upstream sent \(sent), kernel queues \(inKernel))")
        }
    }

    /// The upstream is silent only because llmtap stopped reading it for a client that is not
    /// reading: that is no upstream silence, and `--read-timeout` does not cut the call.
    @Test func aClientThatPausesLongerThanTheReadTimeoutStillGetsEverything() async throws {
        let flood = try FloodUpstream(limit: 32 << 20, finish: true)
        defer { flood.stop() }
        let store = try await Tap.run(upstreamURL: "http://127.0.0.1:\(flood.port)", configure: { $0.readTimeout = .seconds(1) }) { tap in
            let client = try StalledClient(port: tap.proxyPort)
            defer { client.close() }
            try client.send(Self.request)
            try await Task.sleep(for: .milliseconds(2500))
            #expect(flood.sent < flood.limit, "the upstream was held back while the client paused")
            // 3 s alone; in the whole suite on two busy cores reading the 32 MB once took over 20 s.
            let received = client.read(until: Array("\r\n0\r\n\r\n".utf8), seconds: 60)
            #expect(received.count > 32_000_000, "the client got \(received.count) bytes")
            #expect(received.starts(with: Array("HTTP/1.1 200".utf8)))
            #expect(await eventually { tap.app.recorder.stats.written == 1 })
        }
        let listed = try #require(try store.calls().first)
        let call = try #require(try store.call(id: listed.id))
        #expect(call.outcome == .ok)
        #expect(call.responseBody.count > 32_000_000)
    }
}

/// An upstream on a plain socket that answers any request with an endless chunked body, as
/// fast as the kernel takes it, and counts the bytes the kernel took (up to `limit`).
final class FloodUpstream: @unchecked Sendable {  // the counter is atomic; the socket is the thread's
    let port: Int
    let limit: Int
    /// After `limit` bytes, the body's last chunk: the response ends.
    let finish: Bool
    private let listener: Int32
    private let counter = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)

    var sent: Int { counter.load(ordering: .relaxed) }

    init(limit: Int, finish: Bool = false) throws {
        self.limit = limit
        self.finish = finish
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(listener, pointer, length) == 0 && listen(listener, 4) == 0
                    && getsockname(listener, pointer, &length) == 0
            }
        }
        guard bound else { throw POSIXError(.EADDRNOTAVAIL) }
        self.listener = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in serve() }
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
    }

    private func serve() {
        let connection = accept(listener, nil, nil)
        guard connection >= 0 else { return }
        defer { Glibc.close(connection) }
        // The request: its head, then as many body bytes as it announces.
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !stopped.load(ordering: .relaxed) {
            let n = recv(connection, &buffer, buffer.count, 0)
            guard n > 0 else { return }
            request += buffer[..<n]
            let text = String(decoding: request, as: UTF8.self)
            guard let end = text.range(of: "\r\n\r\n") else { continue }
            let length = text.lowercased().split(separator: "\r\n")
                .first { $0.hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
            if text.utf8.distance(from: end.upperBound, to: text.endIndex) >= length { break }
        }
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        guard sendAll(Array(head.utf8), on: connection) else { return }
        let chunk = Array("10000\r\n".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 0x10000) + Array("\r\n".utf8)
        while counter.load(ordering: .relaxed) < limit, sendAll(chunk, on: connection) {}
        if finish, sendAll(Array("0\r\n\r\n".utf8), on: connection) {
            var byte: UInt8 = 0
            _ = recv(connection, &byte, 1, 0)  // until llmtap closes the connection or the test ends
        }
    }

    /// Sends `bytes` as the kernel takes them, counting each byte taken; false once stopped or closed.
    private func sendAll(_ bytes: [UInt8], on connection: Int32) -> Bool {
        var offset = 0
        while offset < bytes.count {
            if stopped.load(ordering: .relaxed) { return false }
            let n = bytes[offset...].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            if n > 0 {
                offset += n
                counter.add(n, ordering: .relaxed)
            } else if n < 0, errno == EAGAIN || errno == EWOULDBLOCK {
                var poller = pollfd(fd: connection, events: Int16(POLLOUT), revents: 0)
                _ = poll(&poller, 1, 50)
            } else {
                return false
            }
        }
        return true
    }
}

/// A client on a plain socket with a small receive buffer that sends its request and then
/// reads nothing.
struct StalledClient {
    let socket: Int32

    init(port: Int) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var size: Int32 = 64 << 10
        setsockopt(socket, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
    }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else {
            throw POSIXError(.EIO)
        }
    }

    /// Reads until the bytes end with `suffix`, the connection closes, or `seconds` pass.
    func read(until suffix: [UInt8], seconds: Double) -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline, !received.reversed().starts(with: suffix.reversed()) {
            var poller = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) >= 0 else { break }
            guard poller.revents != 0 else { continue }
            let n = recv(socket, &buffer, buffer.count, 0)
            guard n > 0 else { break }
            received += buffer[..<n]
        }
        return received
    }

    func close() { Glibc.close(socket) }
}

/// Bytes the kernel holds in the send and receive queues of the IPv4 TCP connections that
/// have one of `ports` at either end (both ends of a loopback connection are listed).
enum KernelQueues {
    static func bytes(ports: Set<Int>) -> Int {
        guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return 0 }
        var total = 0
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > 4, fields[3] == "01" else { continue }  // established connections only
            let local = fields[1].split(separator: ":").last.flatMap { Int($0, radix: 16) }
            let remote = fields[2].split(separator: ":").last.flatMap { Int($0, radix: 16) }
            guard ports.contains(local ?? -1) || ports.contains(remote ?? -1) else { continue }
            let queues = fields[4].split(separator: ":").compactMap { Int($0, radix: 16) }
            total += queues.reduce(0, +)
        }
        return total
    }
}
