import Crypto
import Foundation
import HTTPTypes
import LLMTapCore
import LLMTapStore
import Synchronization

/// Attributes calls to provider keys without keeping them: a key's fingerprint is
/// the first 16 hex digits of HMAC-SHA256(key), keyed with a secret generated
/// once and kept beside the database (mode 0600). The same key always gives the
/// same fingerprint for one database; without the secret, a fingerprint says
/// nothing about the key.
struct KeyFingerprinter: Sendable {
    private let secret: [UInt8]
    /// Fingerprints already computed, in memory only: a process sees few distinct keys,
    /// and an HMAC per call is measurable (~5 % of the proxy's CPU). Bounded.
    private let cache = Cache()

    final class Cache: Sendable {
        let entries = Mutex<[String: String]>([:])
    }

    /// Loads the secret at `path`, creating it (32 random bytes, mode 0600) on first use.
    init(secretPath: String) throws {
        do {
            secret = try SecretKeyFile.load(path: secretPath)
        } catch {
            throw ConfigurationError("cannot write the fingerprint key file \(secretPath)")
        }
    }

    /// The headers that carry provider keys; never stored, never logged.
    static let secretHeaders = ["authorization", "x-api-key", "api-key"]

    func fingerprint(_ key: String) -> String {
        if let known = cache.entries.withLock({ $0[key] }) { return known }
        let mac = HMAC<SHA256>.authenticationCode(for: Data(key.utf8), using: SymmetricKey(data: secret))
        let fingerprint = Hex.string(mac.prefix(8))
        cache.entries.withLock { entries in
            if entries.count >= 1024 { entries.removeAll(keepingCapacity: true) }
            entries[key] = fingerprint
        }
        return fingerprint
    }

    /// The fingerprint of the first provider key found in the request headers.
    func fingerprint(headers: HTTPFields) -> String? {
        for name in Self.secretHeaders {
            guard var value = headers[named: name], !value.isEmpty else { continue }
            if name == "authorization", let space = value.firstIndex(of: " ") {
                value = String(value[value.index(after: space)...])  // "Bearer sk-…" → "sk-…"
            }
            return fingerprint(value)
        }
        return nil
    }
}
