import Foundation
import LLMTapAdapters
import LLMTapFuzzTargets
import LLMTapTestSupport
import Testing

/// The fuzzers' corpus (`Fuzz/corpus/<target>/`, inputs libFuzzer found interesting, crashes
/// it found once included) replayed through the fuzz targets as regression tests, with the
/// recorded wire samples as inputs for every target too. A target stops the process when a
/// property breaks, so a regression fails this run loudly.
struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus")

    /// The wire samples as fuzz inputs: the two split bytes, then for `response` the selector byte.
    static func seeds(for target: String) -> [[UInt8]] {
        WireFixtures.all.flatMap { fixture -> [[UInt8]] in
            let response = Array(fixture.response.utf8)
            let request = Array(fixture.request.utf8)
            switch target {
            case "request": return [request]
            case "json": return [request, response]
            case "response":
                let apis = WireAPI.allCases
                let api = apis.firstIndex { $0.rawValue == fixture.api } ?? 0
                let type = FuzzTargets.contentTypes.firstIndex { fixture.contentType.hasPrefix($0.prefix(16)) } ?? 0
                return [[0x01, 0x07, UInt8(api + type * apis.count)] + response]
            default: return [[0x00, 0x2A] + response]
            }
        }
    }

    @Test(arguments: FuzzTargets.all.keys.sorted())
    func corpusAndSamplesKeepTheirProperties(target: String) throws {
        let run = try #require(FuzzTargets.all[target])
        let directory = Self.corpus.appendingPathComponent(target)
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for file in files {
            // (read leniently: a fuzzer running meanwhile adds and removes files)
            guard let data = try? Data(contentsOf: directory.appendingPathComponent(file)) else { continue }
            run(Array(data))
        }
        let seeds = Self.seeds(for: target)
        for seed in seeds { run(seed) }
        #expect(files.count + seeds.count > 0)
        if ProcessInfo.processInfo.environment["LLMTAP_WRITE_FUZZ_SEEDS"] == "1" {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for (n, seed) in seeds.enumerated() {
                try Data(seed).write(to: directory.appendingPathComponent("seed-\(n)"))
            }
        }
    }
}
