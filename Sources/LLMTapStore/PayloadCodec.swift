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

    /// Compresses many payloads with one zlib stream, reset between payloads. A fresh
    /// stream per payload costs a ~256 KiB allocation that glibc maps and unmaps each
    /// time (madvise and TLB flushes were ~6 % of the proxy's CPU under load).
    final class Compressor {
        private let zlib: ZlibCompressor

        init() throws { zlib = try ZlibCompressor(algorithm: .zlib) }

        func compress(_ record: CallRecord) throws -> Compressed {
            Compressed(request: try compress(record.requestBody), response: try compress(record.responseBody))
        }

        func compress(_ bytes: [UInt8]) throws -> Data {
            guard !bytes.isEmpty else { return try PayloadCodec.compress(bytes) }
            var input = ByteBuffer(bytes: bytes)
            var output = ByteBuffer()
            output.reserveCapacity(zlib.maxSize(from: input))
            defer { try? zlib.reset() }
            try zlib.deflate(from: &input, to: &output, flush: .finish)
            return Data(output.readableBytesView)
        }
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
