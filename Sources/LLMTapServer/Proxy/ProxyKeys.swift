import Crypto
import Foundation
import HTTPTypes
import LLMTapCore
import NIOHTTP1

/// Virtual keys (`--proxy-key NAME=TOKEN`): clients hold a proxy key, never a provider key.
/// When any is configured, every proxied call must bring one (as `Authorization: Bearer`,
/// `x-api-key` or `api-key`); llmtap swaps in the provider's key from its environment
/// (`<PROVIDER>_API_KEY`) and attributes the call to the proxy key's name. Unknown or
/// missing keys get 401 and never reach a provider.
struct ProxyKeys: Sendable {
    /// SHA-256 of each token → its name: tokens are compared as fixed-size digests, in
    /// constant time, and not kept in memory as given.
    private let names: [(digest: [UInt8], name: String)]

    init(_ keys: [String: String]) {
        names = keys.sorted { $0.key < $1.key }.map { (Array(SHA256.hash(data: Data($0.value.utf8))), $0.key) }
    }

    var isEmpty: Bool { names.isEmpty }

    /// The name of the proxy key the request carries, or nil.
    func name(in headers: HTTPFields) -> String? {
        for header in KeyFingerprinter.secretHeaders {
            guard var value = headers[named: header], !value.isEmpty else { continue }
            if header == "authorization", let space = value.firstIndex(of: " ") { value = String(value[value.index(after: space)...]) }
            let digest = Array(SHA256.hash(data: Data(value.utf8)))
            var found: String?
            for entry in names where Self.constantTimeEqual(entry.digest, digest) { found = entry.name }
            return found
        }
        return nil
    }

    /// The upstream headers with the client's key replaced by the provider's (or removed when
    /// llmtap has none for this provider).
    static func swap(_ headers: inout HTTPHeaders, providerKey: String?, api: WireAPIKeyStyle) {
        for name in KeyFingerprinter.secretHeaders { headers.remove(name: name) }
        guard let providerKey else { return }
        switch api {
        case .xAPIKey: headers.add(name: "x-api-key", value: providerKey)
        case .bearer: headers.add(name: "authorization", value: "Bearer \(providerKey)")
        }
    }

    enum WireAPIKeyStyle { case bearer, xAPIKey }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}
