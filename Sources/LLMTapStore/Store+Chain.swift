import Crypto
import Foundation
import GRDB
import LLMTapCore

/// The tamper-evident audit chain. Each call's `chain_hash` is SHA-256 over the previous
/// call's hash, the call's stored row and its stored payload, in insertion (rowid) order,
/// so editing, inserting or deleting a stored call breaks every later link. Costs are
/// derived (usage × the pricing table) and `reprice` rewrites them, so `cost_nano_usd`,
/// `pricing_version` and `usage_checks` are left out of the hash; the usage they come
/// from is in it. Retention deletes a prefix of the chain and leaves a checkpoint signed
/// with the database's secret key, from which the rest still verifies.
enum AuditChain {
    /// Columns of `calls` the hash covers: all but the chain itself and the derived cost.
    static let hashedColumns = Store.callColumns.filter {
        !["cost_nano_usd", "pricing_version", "usage_checks", "chain_hash"].contains($0)
    }
    static let hashedPositions = hashedColumns.map { Store.column($0) }
    static let genesis = Data(repeating: 0, count: 32)

    /// The link of a call whose row is `values` (in `Store.callColumns` order) and whose
    /// payload has the digest `payloadDigest` (nil: no payload, a no-log call).
    /// `textSources`: the hashes of the messages the row's `chat_input` and `output` are read
    /// from (`ThreadText`), so that repointing a node at another message breaks the link.
    static func link(previous: Data, values: [DatabaseValue], payloadDigest: Data?, textSources: [Hash16] = []) -> Data {
        var bytes = Bytes()
        bytes.append(previous)
        for position in hashedPositions {
            // Columns added after the chain began count only when set, so older links still hold.
            if position == Store.Position.textFromThread, (Int64.fromDatabaseValue(values[position]) ?? 0) == 0 { continue }
            bytes.append(values[position])
        }
        bytes.buffer.append(payloadDigest == nil ? 0 : 1)
        if let payloadDigest { bytes.append(payloadDigest) }
        for source in textSources { bytes.buffer.append(contentsOf: source.bytes) }
        return bytes.digest()
    }

    /// The digest of a `payloads` row in `Store.insertPayload` order: its first seven columns,
    /// and `request_format` when the request is a fragment template (rows written before
    /// templates existed were digested without it); for a format-2 template, also the hashes
    /// of the fragments it uses, in order (`fragments`), which its `fragment_ids` only point to.
    static func payloadDigest(_ payload: [DatabaseValue], fragments: [Hash16]) -> Data {
        let format = payload.count > 7 ? Int64.fromDatabaseValue(payload[7]) ?? 0 : 0
        switch format {
        case 0: return digest(payload: Array(payload.prefix(7)))
        case 1: return digest(payload: Array(payload.prefix(8)))
        default: return digest(payload: Array(payload.prefix(8)) + fragments.map { $0.data.databaseValue })
        }
    }

    /// The hashes of the fragments a payload's `fragment_ids` names, in order; nil when one is missing.
    static func fragmentHashes(_ ids: Data?, format: Int64, db: Database) throws -> [Hash16]? {
        guard let ids else { return [] }
        let find = try db.cachedStatement(sql: "SELECT hash FROM fragments WHERE id = ?")
        var hashes: [Hash16] = []
        for id in try PayloadFragments.decode(ids: Array(ids), format: format) {
            guard let stored = try Data.fetchOne(find, arguments: [id]), let hash = Hash16(bytes: stored) else { return nil }
            hashes.append(hash)
        }
        return hashes
    }

    /// The `payloads` rows (`p`, with their call `c`) that `clause` keeps, with the columns
    /// `payloadDigest` reads: the call's id and the encoding are digested as they were when the
    /// row held them (before `v13`).
    static func payloadRows(where clause: String = "1") -> String {
        "SELECT c.id AS call_id, 'zlib' AS encoding, p.* FROM payloads p JOIN calls c ON c.rowid = p.call_rowid WHERE \(clause)"
    }

    /// The payload columns `payloadDigest` reads, in order.
    static let payloadColumns = [
        "call_id", "encoding", "request", "request_size", "response", "response_size", "response_content_encoding",
        "request_format",
    ]

    /// SHA-256 of payload values. Kept in the row when retention drops the bodies
    /// (`--retain-payloads`), so the chain still verifies.
    static func digest(payload: [DatabaseValue]) -> Data {
        var bytes = Bytes()
        for value in payload { bytes.append(value) }
        return bytes.digest()
    }

    /// What a link or digest hashes, gathered into one buffer and hashed at once: SHA-256 of
    /// the same bytes as the first chain's code, which fed the hasher a few bytes at a time
    /// (two to four calls per value, each with a small array of its own: ~5 % of the writer
    /// thread). `ChainTests.linksAndDigestsHashTheSameBytesAsEver` holds it to those hashes.
    private struct Bytes {
        var buffer: [UInt8] = []

        init() { buffer.reserveCapacity(2_048) }

        mutating func append(_ data: Data) { buffer.append(contentsOf: data) }

        /// Each value typed and length-prefixed, so no two different rows hash the same bytes.
        mutating func append(_ value: DatabaseValue) {
            func integer(_ n: UInt64) { withUnsafeBytes(of: n.bigEndian) { buffer.append(contentsOf: $0) } }
            switch value.storage {
            case .null:
                buffer.append(0)
            case .int64(let n):
                buffer.append(1)
                integer(UInt64(bitPattern: n))
            case .double(let d):
                buffer.append(2)
                integer(d.bitPattern)
            case .string(let s):
                buffer.append(3)
                integer(UInt64(s.utf8.count))
                buffer.append(contentsOf: s.utf8)
            case .blob(let data):
                buffer.append(4)
                integer(UInt64(data.count))
                buffer.append(contentsOf: data)
            }
        }

        func digest() -> Data { Data(SHA256.hash(data: buffer)) }
    }

    /// The hash the next call links to: the newest call's, else the last checkpoint's, else zeros.
    static func head(_ db: Database) throws -> Data {
        if let hash = try Data.fetchOne(db, sql: "SELECT chain_hash FROM calls WHERE chain_hash IS NOT NULL ORDER BY rowid DESC LIMIT 1") {
            return hash
        }
        return try Data.fetchOne(db, sql: "SELECT chain_hash FROM chain_checkpoints ORDER BY id DESC LIMIT 1") ?? genesis
    }

    static func signature(key: [UInt8], lastRowID: Int64, hash: Data, createdAt: Double, deleted: Int) -> Data {
        var message = Data("llmtap-checkpoint\n\(lastRowID)\n\(createdAt.bitPattern)\n\(deleted)\n".utf8)
        message.append(hash)
        return Data(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }
}

/// What `llmtap verify` found.
public struct ChainReport: Sendable, Equatable {
    /// Calls whose link was checked and held.
    public var verified: Int
    /// Calls written before the chain existed (an older database), not covered.
    public var unchained: Int
    /// The first call whose link does not hold, and why.
    public var broken: (id: String, rowID: Int64, reason: String)?
    /// The newest call's hash: note it down to detect later deletion of the newest calls.
    public var head: String?
    /// The checkpoint the walk started from (retention deleted the calls before it).
    public var checkpoint: (lastRowID: Int64, deleted: Int, signatureValid: Bool)?

    public static func == (a: ChainReport, b: ChainReport) -> Bool {
        a.verified == b.verified && a.unchained == b.unchained && a.broken?.id == b.broken?.id
            && a.broken?.reason == b.broken?.reason && a.head == b.head && a.checkpoint?.lastRowID == b.checkpoint?.lastRowID
    }
}

extension Store {
    /// Walks the chain from the last retention checkpoint (or the first call) to the newest
    /// call, recomputing every link from the stored row and payload.
    public func verifyChain() throws -> ChainReport {
        let key = try SecretKeyFile.load(path: path + ".fingerprint-key")
        return try pool.read { db in
            var report = ChainReport(verified: 0, unchained: 0)
            var previous = AuditChain.genesis
            if let checkpoint = try Row.fetchOne(db, sql: "SELECT * FROM chain_checkpoints ORDER BY id DESC LIMIT 1") {
                let hash: Data = checkpoint["chain_hash"]
                let expected = AuditChain.signature(
                    key: key, lastRowID: checkpoint["last_rowid"], hash: hash, createdAt: checkpoint["created_at"],
                    deleted: checkpoint["deleted"])
                let valid = expected == (checkpoint["signature"] as Data)
                report.checkpoint = (checkpoint["last_rowid"], checkpoint["deleted"], valid)
                previous = hash
                if !valid {
                    report.broken = ("(checkpoint)", checkpoint["last_rowid"], "the retention checkpoint's signature does not match")
                    return report
                }
            }
            let columns = AuditChain.hashedColumns.map { "calls.\($0)" }.joined(separator: ", ")
            let cursor = try Row.fetchCursor(
                db,
                sql: """
                    SELECT calls.rowid AS row_id, calls.chain_hash, \(columns),
                      \(AuditChain.payloadColumns.map { "p.\($0) AS p_\($0)" }.joined(separator: ", ")), p.digest AS p_digest,
                      p.fragment_ids AS p_fragment_ids
                    FROM calls LEFT JOIN (\(AuditChain.payloadRows())) p ON p.call_id = calls.id ORDER BY calls.rowid
                    """)
            var chained = false
            while let row = try cursor.next() {
                let rowID: Int64 = row["row_id"]
                let id: String = row["id"]
                guard let stored = row["chain_hash"] as Data? else {
                    if chained {
                        report.broken = (id, rowID, "its chain hash was removed")
                        return report
                    }
                    report.unchained += 1
                    continue
                }
                chained = true
                var values = [DatabaseValue](repeating: .null, count: Store.callColumns.count)
                for (name, position) in zip(AuditChain.hashedColumns, AuditChain.hashedPositions) {
                    values[position] = row[name] as DatabaseValue
                }
                var payloadDigest: Data?
                if (row["p_call_id"] as String?) != nil {
                    if let kept = row["p_digest"] as Data? {
                        payloadDigest = kept  // the bodies were dropped by payload retention
                    } else {
                        guard let fragments = try AuditChain.fragmentHashes(row["p_fragment_ids"], format: row["p_request_format"], db: db) else {
                            report.broken = (id, rowID, "a request fragment it uses was removed")
                            return report
                        }
                        payloadDigest = AuditChain.payloadDigest(
                            AuditChain.payloadColumns.map { row["p_" + $0] as DatabaseValue }, fragments: fragments)
                    }
                }
                var textSources: [Hash16] = []
                let bits = Int64.fromDatabaseValue(values[Store.Position.textFromThread]) ?? 0
                if bits != 0 {
                    guard
                        let sources = try ThreadText.sources(
                            bits: bits, contextNode: row["context_node"], replyNode: row["reply_node"], db: db)
                    else {
                        report.broken = (id, rowID, "a message its text is read from was changed or removed")
                        return report
                    }
                    textSources = sources
                }
                let link = AuditChain.link(previous: previous, values: values, payloadDigest: payloadDigest, textSources: textSources)
                guard link == stored else {
                    report.broken = (id, rowID, "its stored row, its payload or the call before it was changed or removed")
                    return report
                }
                report.verified += 1
                previous = stored
            }
            report.head = report.verified > 0 ? Hex.string(previous) : nil
            // Request fragments are named by their hash in the (chained) templates: each must still hash to it.
            let fragments = try Row.fetchCursor(db, sql: "SELECT hash, bytes, size, message_id FROM fragments")
            while let fragment = try fragments.next() {
                let hash: Data = fragment["hash"]
                let bytes = try? Store.fragmentBytes(fragment, db: db)
                guard let bytes, PayloadFragments.hash(bytes).data == hash else {
                    report.broken = ("fragment " + Hex.string(hash), 0, "a stored request fragment was changed")
                    return report
                }
            }
            // Messages (the threaded contexts) are named by the hash of their normalized form: each must still hash to it.
            let messages = try Row.fetchCursor(db, sql: "SELECT id, hash, message FROM messages")
            while let row = try messages.next() {
                let hash: Data = row["hash"]
                let text = try? PayloadCodec.decompress(row["message"], size: nil)
                guard let message = text.flatMap({ JSONValue.parse($0) }), HashedMessage(message).hash.data == hash else {
                    report.broken = ("message " + Hex.string(hash), 0, "a stored message was changed")
                    return report
                }
            }
            // Their keys (`ContentKeys`) must name rows that have that hash.
            for (table, keys) in [("messages", "message_keys"), ("fragments", "fragment_keys")] {
                if let hash = try Data.fetchOne(
                    db,
                    sql: "SELECT k.hash FROM \(keys) k LEFT JOIN \(table) t ON t.id = k.id WHERE t.hash IS NOT k.hash LIMIT 1")
                {
                    report.broken = ("\(table.dropLast()) " + Hex.string(hash), 0, "a stored \(table.dropLast())'s key was changed")
                    return report
                }
            }
            return report
        }
    }
}

/// A 32-byte secret kept beside the database (mode 0600), made on first use: it keys the
/// provider-key fingerprints and signs the audit chain's retention checkpoints.
public enum SecretKeyFile {
    public static func load(path: String) throws -> [UInt8] {
        if let data = FileManager.default.contents(atPath: path), data.count >= 32 { return Array(data) }
        let key = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        guard FileManager.default.createFile(atPath: path, contents: key, attributes: [.posixPermissions: 0o600]) else {
            throw KeyFileError(path: path)
        }
        return Array(key)
    }

    public struct KeyFileError: Error, CustomStringConvertible {
        public var path: String
        public var description: String { "cannot write the key file \(path)" }
    }
}
