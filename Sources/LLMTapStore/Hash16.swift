import Crypto
import Foundation
import GRDB
import GRDBSQLite

/// The first 16 bytes of a SHA-256: the key of stored messages and request fragments.
///
/// Two words rather than `Data`: the writer's caches look up every message and fragment of
/// every call, and hashing and comparing `Data` keys was ~5 % of the recorder's time on
/// 20-turn sessions. 16 bytes keep the indexes small, and collisions out of reach (2^64).
struct Hash16: Hashable, Sendable {
    let high: UInt64
    let low: UInt64

    /// Of these bytes.
    init(of bytes: UnsafeRawBufferPointer) {
        var hasher = SHA256()
        hasher.update(bufferPointer: bytes)
        self.init(hasher.finalize())
    }

    init<Bytes: ContiguousBytes>(of bytes: Bytes) {
        self = bytes.withUnsafeBytes { Hash16(of: $0) }
    }

    init(_ digest: SHA256.Digest) {
        (high, low) = digest.withUnsafeBytes { raw in
            (UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
             UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
    }

    /// From 16 stored bytes; nil for any other length.
    init?<Bytes: Collection<UInt8>>(bytes: Bytes) {
        guard bytes.count == 16 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (n, byte) in bytes.enumerated() {
            if n < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
        }
        (self.high, self.low) = (high, low)
    }

    /// The 16 bytes, big-endian: the stored form.
    var bytes: [UInt8] {
        withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { Array($0) }
    }

    var data: Data { Data(bytes) }

    /// From a 16-byte blob column of the row a statement stands on; nil for anything else.
    init?(_ statement: SQLiteStatement, column: CInt) {
        guard sqlite3_column_bytes(statement, column) == 16, let blob = sqlite3_column_blob(statement, column) else {
            return nil
        }
        self.init(bytes: UnsafeRawBufferPointer(start: blob, count: 16))
    }
}
