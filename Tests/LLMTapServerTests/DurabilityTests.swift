import Foundation
import LLMTapCore
import LLMTapServer
import LLMTapStore
import LLMTapTestSupport
import Testing

/// `--durability sync`: a call's record is committed before the last byte of its response
/// reaches the client. The recorder is told to wait two seconds for company before writing,
/// so in the default mode the record is not there yet when the response ends.
struct DurabilityTests {
    @Test(arguments: [false, true])
    func syncCommitsBeforeTheResponseEnds(sync: Bool) async throws {
        _ = try await Tap.run(configure: {
            $0.durability = sync ? .sync : .fast
            $0.recorder.flushInterval = .seconds(2)
        }) { tap in
            let store = tap.app.recorder.store
            var n = 0
            for (body, expected) in [
                (WireSamples.request(stream: false), WireSamples.completion),
                (WireSamples.request(stream: true), WireSamples.text.events(includeUsage: false).joined()),
                (WireSamples.request(model: "gzip", stream: false), nil),
            ] {
                let response = try await tap.post(body: body)
                let (bytes, clean) = await Tap.read(response)
                n += 1
                let countAtEnd = try store.callCount()
                #expect(clean)
                if let expected { #expect(bytes == expected) }  // the held-back last byte arrives
                if sync {
                    #expect(countAtEnd == n)
                } else {
                    #expect(countAtEnd < n)  // still waiting in the recorder's queue
                }
                let written = n
                #expect(await eventually { (try? store.callCount()) == written })
            }
        }
    }

    @Test func syncCommitsConcurrentCallsTogether() async throws {
        _ = try await Tap.run(configure: { $0.durability = .sync }) { tap in
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for n in 0..<40 {
                    group.addTask {
                        let response = try await tap.post(body: WireSamples.request(model: "m\(n)", stream: n % 2 == 0))
                        _ = await Tap.read(response)
                        return try tap.app.recorder.store.call(model: "m\(n)")
                    }
                }
                for try await present in group { #expect(present) }
            }
            #expect(tap.app.recorder.stats.batches < 40)  // group commit: fewer transactions than calls
        }
    }
}

extension Store {
    /// Whether a call of this model is stored.
    func call(model: String) throws -> Bool {
        try calls().contains { $0.model == model }
    }
}
