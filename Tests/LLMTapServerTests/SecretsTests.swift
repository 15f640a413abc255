import Foundation
import LLMTapStore
import LLMTapTestSupport
import Testing

struct SecretsTests {
    /// After calls carrying a provider key in every header form, its bytes are in no file llmtap wrote.
    @Test func providerKeysNeverReachTheDisk() async throws {
        let store = try await Tap.run(configure: { $0.recorder.capacity = 1 }) { tap in
            for headers in [[], [("x-api-key", Tap.secretKey)], [("api-key", Tap.secretKey)]] {
                let response = try await tap.post(body: WireSamples.request(stream: true), headers: headers)
                _ = await Tap.read(response)
            }
        }
        let calls = try store.calls()
        #expect(calls.count == 3)
        #expect(Set(calls.compactMap(\.keyFingerprint)).count == 1)  // one key, one fingerprint
        let dir = URL(fileURLWithPath: store.path).deletingLastPathComponent()
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(files.contains("llmtap.sqlite"))
        let needle = Data(Tap.secretKey.utf8)
        for file in files {
            let data = try Data(contentsOf: dir.appendingPathComponent(file))
            #expect(data.range(of: needle) == nil, "key found in \(file)")
        }
        let keyFile = dir.appendingPathComponent("llmtap.sqlite.fingerprint-key").path
        let permissions = try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? Int
        #expect(permissions == 0o600)
    }
}
