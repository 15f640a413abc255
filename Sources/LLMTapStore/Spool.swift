import Foundation
import LLMTapCore
import Synchronization

/// An append-only file of calls that could not be written to the database yet
/// (queue full, database locked, full or read-only). One JSON line per call,
/// payload bytes in base64. The Recorder replays it when the database works
/// again. Bounded by `maxBytes`: beyond it a call is dropped and counted.
///
/// Appends and the hand-over to a replay happen under one lock; the file being
/// replayed is renamed first, so new appends go to a fresh file meanwhile.
public final class Spool: Sendable {
    public let path: String
    let replayPath: String
    let maxBytes: Int
    private let lock = Mutex<Void>(())

    struct Entry: Codable {
        var record: CallRecord
        var request: Data
        var response: Data
    }

    public init(path: String, maxBytes: Int = 256 << 20) {
        self.path = path
        self.replayPath = path + ".replaying"
        self.maxBytes = maxBytes
    }

    /// Appends calls; returns how many were written (the rest did not fit or the disk refused).
    @discardableResult
    public func append(_ records: [CallRecord]) -> Int {
        let encoder = JSONEncoder()
        var data = Data()
        var written = 0
        lock.withLock { _ in
            let existing = Self.size(of: path) + Self.size(of: replayPath)
            for record in records {
                var stripped = record
                stripped.requestBody = []
                stripped.responseBody = []
                let entry = Entry(record: stripped, request: Data(record.requestBody), response: Data(record.responseBody))
                guard let line = try? encoder.encode(entry), existing + data.count + line.count < maxBytes else { break }
                data.append(line)
                data.append(0x0A)
                written += 1
            }
            guard !data.isEmpty else { return }
            if !FileManager.default.fileExists(atPath: path) {
                guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
                else { written = 0; return }
            }
            do {
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
                defer { try? handle.close() }
                try handle.seekToEnd()
                try handle.write(contentsOf: data)
            } catch {
                written = 0
            }
        }
        return written
    }

    /// Whether anything waits to be replayed.
    public var isEmpty: Bool {
        lock.withLock { _ in Self.size(of: path) == 0 && Self.size(of: replayPath) == 0 }
    }

    /// Calls waiting in the spool (reads the files; for `/healthz` and tests).
    public var count: Int {
        lock.withLock { _ in Self.lineCount(path) + Self.lineCount(replayPath) }
    }

    /// Takes the spooled calls for a replay. Call `replayFinished()` once they are in
    /// the database; until then they stay on disk and a crash replays them again
    /// (inserts are idempotent).
    func takeForReplay() -> [CallRecord] {
        lock.withLock { _ in
            let fm = FileManager.default
            if !fm.fileExists(atPath: replayPath), fm.fileExists(atPath: path) {
                try? fm.moveItem(atPath: path, toPath: replayPath)
            }
            guard let data = fm.contents(atPath: replayPath) else { return [] }
            let decoder = JSONDecoder()
            return data.split(separator: 0x0A).compactMap { line in
                guard let entry = try? decoder.decode(Entry.self, from: line) else { return nil }
                var record = entry.record
                record.requestBody = Array(entry.request)
                record.responseBody = Array(entry.response)
                return record
            }
        }
    }

    func replayFinished() {
        lock.withLock { _ in try? FileManager.default.removeItem(atPath: replayPath) }
    }

    private static func size(of path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }

    private static func lineCount(_ path: String) -> Int {
        FileManager.default.contents(atPath: path)?.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) } ?? 0
    }
}
