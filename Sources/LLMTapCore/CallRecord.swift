import Foundation
import Synchronization

/// Everything llmtap keeps of one proxied call: the facts row of the `calls`
/// table plus the raw payloads (stored compressed in `payloads`).
/// Built by the proxy when the call ends, written by the Recorder.
public struct CallRecord: Sendable, Codable, Equatable {
    // identity
    public var id: String
    /// Unix time (seconds) at which llmtap received the request.
    public var createdAt: Double
    public var sessionID: String?
    public var sessionSource: SessionSource?
    public var provider: String
    /// The upstream path, e.g. `/v1/chat/completions`.
    public var endpoint: String
    public var apiFormat: String
    public var keyFingerprint: String?
    public var clientAddress: String?
    public var tags: [String: String]

    // request
    /// The model sent upstream (after a configured alias, if any).
    public var model: String?
    /// The model the client named, when an alias rewrote it (`auto` → `gpt-4o-mini`).
    public var requestedModel: String?
    /// Every request field but the conversation, as canonical JSON.
    public var parameters: JSONValue?
    /// The full message list (system included) or prompt.
    public var context: JSONValue?
    /// The last user turn as text.
    public var chatInput: String?
    public var isStream: Bool
    /// llmtap added `stream_options.include_usage` and removed the extra chunk.
    public var usageInjected: Bool

    // response
    public var httpStatus: Int?
    public var output: String?
    /// Every choice's text, when the request asked for several (`n` > 1).
    public var outputs: [String]?
    public var toolCalls: JSONValue?
    public var finishReason: String?
    public var responseModel: String?
    public var errorType: String?
    public var errorMessage: String?
    public var outcome: Outcome

    // metrics
    public var usage: Usage?
    /// The provider reported usage on more than one chunk (the last one counts; never summed).
    public var usageRepeated: Bool
    /// Checks on the usage and cost that an auditor may want to look at.
    public var usageChecks: UsageChecks
    public var costNanoUSD: Int64?
    public var pricingVersion: String?
    /// Request received → last byte sent to the client.
    public var latencyS: Double
    /// Request received → first chunk carrying content or a tool-call delta.
    public var ttftS: Double?
    /// Mean gap between content chunks, and its p95 and maximum.
    public var itlS: Double?
    public var itlP95S: Double?
    public var itlMaxS: Double?
    /// Output tokens ÷ time from first to last content chunk.
    public var tokensPerSecond: Double?
    /// What the provider measured itself (Ollama's durations and tokens/s), beside the wire metrics.
    public var serverMetrics: JSONValue?

    /// `X-Tap-No-Log`: metrics only, no content and no payloads.
    public var noLog: Bool

    // payloads, as received (the response possibly still content-encoded)
    public var requestBody: [UInt8]
    public var responseBody: [UInt8]
    public var responseContentEncoding: String?

    public enum SessionSource: String, Sendable, Codable {
        case header, body, auto
    }

    public enum Outcome: String, Sendable, Codable, CaseIterable {
        case ok
        case upstreamError = "upstream_error"
        case unreachable
        case clientCancelled = "client_cancelled"
        case timeout
    }

    public init(
        id: String = CallID.make(),
        createdAt: Double,
        provider: String,
        endpoint: String,
        apiFormat: String,
        outcome: Outcome = .ok,
        latencyS: Double = 0
    ) {
        self.id = id
        self.createdAt = createdAt
        self.provider = provider
        self.endpoint = endpoint
        self.apiFormat = apiFormat
        self.tags = [:]
        self.isStream = false
        self.usageInjected = false
        self.usageRepeated = false
        self.usageChecks = []
        self.outcome = outcome
        self.latencyS = latencyS
        self.noLog = false
        self.requestBody = []
        self.responseBody = []
    }
}

/// Time-ordered call identifiers in the UUIDv7 layout (RFC 9562): 48 bits of
/// Unix milliseconds, a 12-bit counter for ids made in the same millisecond
/// (RFC 9562 §6.2, method 1), then random bits — so ids made by one process sort
/// in the order they were made.
public enum CallID {
    private static let clock = Mutex((ms: UInt64(0), counter: UInt16(0)))

    public static func make(date: Date = Date()) -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        let (ms, counter) = clock.withLock { state -> (UInt64, UInt16) in
            var ms = UInt64(max(0, date.timeIntervalSince1970 * 1000))
            if ms <= state.ms {
                if state.counter < 0xFFF {
                    state.counter += 1
                    ms = state.ms
                } else {
                    ms = state.ms + 1
                    state.counter = 0
                }
            } else {
                state.counter = 0
            }
            state.ms = ms
            return (ms, state.counter)
        }
        for i in 0..<6 { bytes[i] = UInt8(truncatingIfNeeded: ms >> (8 * (5 - i))) }
        // One draw of the system generator for all 64 random bits (one per byte was eight
        // `getrandom` calls on the request path).
        var rng = SystemRandomNumberGenerator()
        let random: UInt64 = rng.next()
        for i in 8..<16 { bytes[i] = UInt8(truncatingIfNeeded: random >> (8 * (i - 8))) }
        bytes[6] = UInt8(counter >> 8)
        bytes[7] = UInt8(truncatingIfNeeded: counter)
        bytes[6] = (bytes[6] & 0x0F) | 0x70
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let digits = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: 36) { out in
            var n = 0
            for (i, byte) in bytes.enumerated() {
                if i == 4 || i == 6 || i == 8 || i == 10 {
                    out[n] = UInt8(ascii: "-")
                    n += 1
                }
                out[n] = digits[Int(byte >> 4)]
                out[n + 1] = digits[Int(byte & 0x0F)]
                n += 2
            }
            return n
        }
    }
}

