import CompressNIO
import Foundation
import LLMTapCore
import NIOCore

/// zlib (RFC 1950) compression of the raw request and response bytes. The
/// stored `*_size` columns keep the original lengths, and decompression gives
/// back the exact bytes.
enum PayloadCodec {
    struct Compressed {
        var request: Data
        var response: Data
    }

    static func compress(_ record: CallRecord) throws -> Compressed {
        Compressed(request: try compress(record.requestBody), response: try compress(record.responseBody))
    }

    static func compress(_ bytes: [UInt8]) throws -> Data {
        var buffer = ByteBuffer(bytes: bytes)
        let compressed = try buffer.compress(with: .zlib())
        return Data(compressed.readableBytesView)
    }

    static func decompress(_ data: Data, size: Int) throws -> [UInt8] {
        var buffer = ByteBuffer(bytes: data)
        let out = try buffer.decompress(with: .zlib(), maxSize: max(size, 1))
        return Array(out.readableBytesView)
    }
}
