import AsyncHTTPClient
import Foundation
import GRDB
import LLMTapCore
import LLMTapServer
@testable import LLMTapStore
import LLMTapTestSupport
import NIOCore
import Testing

/// The database fails under a running proxy. Traffic is served throughout; records go to the
/// spool and are replayed once the database takes writes again; `/healthz` and `/metrics`
/// say what is going on; the file stays sound.
struct DatabaseFaultTests {
    enum Fault: String, CaseIterable, CustomTestStringConvertible {
        /// Another process holds the write lock.
        case lockedByAnotherProcess
        /// The file cannot grow (`PRAGMA max_page_count` at its current size): SQLITE_FULL, as on a full disk.
        case diskFull
        /// The writer's connection refuses writes (`PRAGMA query_only`): SQLITE_READONLY, as from a
        /// read-only file or file system (the tests run as root, for whom a chmod changes nothing).
        case readOnly
        /// The file (and its WAL) deleted while llmtap runs.
        case deletedWhileRunning

        var testDescription: String { rawValue }
        /// Faults that last until fixed, during which the proxy is degraded.
        var persists: Bool { self == .lockedByAnotherProcess || self == .diskFull }
    }

    @Test(arguments: Fault.allCases)
    func proxyServesThroughADatabaseFault(_ fault: Fault) async throws {
        let before = 2, during = 6, after = 2
        let store = try await Tap.run(configure: { $0.recorder.retryInterval = .milliseconds(100) }) { tap in
            let recorder = tap.app.recorder
            let databasePath = recorder.store.path
            for n in 0..<before { try await expectServed(tap, "before-\(n)") }
            #expect(await eventually { recorder.stats.written == before })

            var locker: (process: Process, input: Pipe)?
            switch fault {
            case .lockedByAnotherProcess: locker = try lockInAnotherProcess(databasePath)
            case .diskFull:
                try await recorder.store.pool.writeWithoutTransaction { db in
                    let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 1
                    try db.execute(sql: "PRAGMA max_page_count = \(pages)")
                }
            case .readOnly:
                try await recorder.store.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA query_only = 1") }
            case .deletedWhileRunning:
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: databasePath + suffix) }
            }

            // Calls big enough to need new pages (a full disk refuses only growth).
            for n in 0..<during { try await expectServed(tap, "during-\(n)", padding: 100_000) }
            if fault.persists {
                // Degraded and saying so, with the calls safe in the spool.
                #expect(await eventually { recorder.stats.spooled >= during })
                let health = try await tap.api("/healthz")
                #expect(health.status == 503)
                #expect(health.json?["status"] == .string("degraded"))
                #expect((health.json?["recorder"]?["spool_pending"]?.intValue ?? 0) >= 1)
                let metrics = try await tap.api("/metrics").body
                #expect(metrics.contains("llmtap_database_healthy 0"))
                #expect(metrics.contains("llmtap_recorder_spooled_calls \(recorder.stats.spooled)"))
            }

            switch fault {
            case .lockedByAnotherProcess:
                try locker?.input.fileHandleForWriting.close()  // the other process lets go
                locker?.process.waitUntilExit()
            case .diskFull:
                try await recorder.store.pool.writeWithoutTransaction { db in
                    try db.execute(sql: "PRAGMA max_page_count = 4294967294")
                }
            case .readOnly, .deletedWhileRunning:
                break  // llmtap opens the file afresh by itself
            }
            #expect(await eventually { recorder.stats.written == before + during })
            #expect(recorder.stats.replayed == recorder.stats.spooled)
            #expect(recorder.spool.isEmpty)
            #expect(recorder.stats.dropped == 0)
            if fault == .readOnly || fault == .deletedWhileRunning { #expect(recorder.stats.reopened == 1) }
            let health = try await tap.api("/healthz")
            #expect(health.status == 200)

            for n in 0..<after { try await expectServed(tap, "after-\(n)") }
        }
        #expect(try store.integrityCheck() == "ok")
        let models = Set(try store.calls().compactMap(\.model))
        let expected = Set(
            (fault == .deletedWhileRunning ? [] : (0..<before).map { "before-\($0)" })
                + (0..<during).map { "during-\($0)" } + (0..<after).map { "after-\($0)" })
        #expect(models == expected)
        #expect(try store.verifyChain().broken == nil)
    }

    private func expectServed(_ tap: Tap, _ model: String, padding: Int = 0) async throws {
        let extra = padding > 0 ? #","pad":""# + String(repeating: "p", count: padding) + "\"" : ""
        let response = try await tap.post(body: WireSamples.request(model: model, stream: false, extra: extra))
        #expect(response.status == .ok)
        #expect(await Tap.read(response).bytes == WireSamples.completion)
    }

    /// A python3 process that takes the write lock and holds it until its input is closed.
    private func lockInAnotherProcess(_ path: String) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "-c",
            """
            import sqlite3, sys
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute('BEGIN IMMEDIATE')
            print('locked', flush=True)
            sys.stdin.read()
            """,
            path,
        ]
        let output = Pipe()
        let input = Pipe()
        process.standardOutput = output
        process.standardInput = input
        try process.run()
        let line = output.fileHandleForReading.availableData
        #expect(String(decoding: line, as: UTF8.self).hasPrefix("locked"))
        return (process, input)
    }
}
