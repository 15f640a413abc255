import CZlib
import Foundation

/// zlib (RFC 1950) compression of the raw request and response bytes, with a preset
/// dictionary of the strings chat payloads repeat (`PayloadDictionary`): a 1 KB body has
/// little to compress against on its own. The stored `*_size` columns keep the original
/// lengths, and decompression gives back the exact bytes.
///
/// zlib is called directly: CompressNIO, which llmtap uses for HTTP content codings, has no
/// way to set a dictionary.
enum PayloadCodec {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Compresses many payloads with one zlib stream, reset between payloads. A fresh
    /// stream per payload costs a ~256 KiB allocation that glibc maps and unmaps each
    /// time (madvise and TLB flushes were ~6 % of the proxy's CPU under load).
    final class Compressor {
        /// zlib keeps a pointer back to its stream: it lives at one address.
        private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        private let dictionary: PayloadDictionary.Version?
        /// Output space reused from payload to payload: a fresh zeroed buffer of `deflateBound`
        /// bytes per payload (a streamed response is tens of KiB) was page faults and `memset`,
        /// ~20 % of the recorder's CPU on long conversations.
        private var scratch: [UInt8] = []

        /// - Parameter dictionary: `PayloadDictionary.currentPieces` for pieces of a body (a
        ///   message, a request fragment): setting the 6 KB payload dictionary costs ~7 µs
        ///   (more than compressing a 300-byte message) for a few percent on their prose.
        init(dictionary: PayloadDictionary.Version? = PayloadDictionary.current) throws {
            self.dictionary = dictionary
            stream.initialize(to: z_stream())
            let status = deflateInit_(stream, Z_DEFAULT_COMPRESSION, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
            guard status == Z_OK else { throw Failure(description: "deflateInit: \(status)") }
        }

        deinit {
            deflateEnd(stream)
            stream.deallocate()
        }

        /// - Parameter against: a dictionary for this payload only, instead of the compressor's:
        ///   bytes the payload largely repeats (a request fragment against its stored message).
        func compress(_ bytes: [UInt8], against: [UInt8]? = nil) throws -> Data {
            guard deflateReset(stream) == Z_OK,
                (against ?? dictionary?.bytes)?.withUnsafeBufferPointer({
                    deflateSetDictionary(stream, $0.baseAddress, uInt($0.count))
                }) ?? Z_OK == Z_OK
            else { throw Failure(description: "deflate could not be reset") }
            let bound = Int(deflateBound(stream, uLong(bytes.count)))
            if scratch.count < bound { scratch = [UInt8](repeating: 0, count: max(bound, scratch.count * 2)) }
            let status = bytes.withUnsafeBufferPointer { input in
                scratch.withUnsafeMutableBufferPointer { out -> Int32 in
                    stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
                    stream.pointee.avail_in = uInt(input.count)
                    stream.pointee.next_out = out.baseAddress
                    stream.pointee.avail_out = uInt(out.count)
                    return deflate(stream, Z_FINISH)
                }
            }
            guard status == Z_STREAM_END else { throw Failure(description: "deflate: \(status)") }
            return Data(scratch[..<Int(stream.pointee.total_out)])
        }
    }

    static func compress(_ bytes: [UInt8]) throws -> Data {
        try Compressor().compress(bytes)
    }

    /// A piece of a body (a message, a request fragment), with the pieces' dictionary.
    static func compressPiece(_ bytes: [UInt8]) throws -> Data {
        try Compressor(dictionary: PayloadDictionary.currentPieces).compress(bytes)
    }

    /// The original bytes; a payload compressed with a preset dictionary names it (by its
    /// Adler-32) and gets it here. `size`: the recorded length, checked; nil when unknown
    /// (fragment templates), the output then grows as needed.
    /// - Parameter against: the dictionary a payload was compressed `against`, if any.
    static func decompress(_ data: Data, size: Int?, against: [UInt8]? = nil) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit_(&stream, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw Failure(description: "inflateInit failed")
        }
        defer { inflateEnd(&stream) }
        // One spare byte: more output than recorded is an error.
        var output = [UInt8](repeating: 0, count: size.map { $0 + 1 } ?? max(4096, data.count * 4))
        let input = [UInt8](data)
        var produced = 0
        try input.withUnsafeBufferPointer { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
            stream.avail_in = uInt(input.count)
            while true {
                let status = output.withUnsafeMutableBufferPointer { out -> Int32 in
                    stream.next_out = out.baseAddress.map { $0 + produced }
                    stream.avail_out = uInt(out.count - produced)
                    let status = inflate(&stream, Z_FINISH)
                    produced = out.count - Int(stream.avail_out)
                    return status
                }
                switch status {
                case Z_STREAM_END:
                    return
                case Z_NEED_DICT:
                    let own = against.map(PayloadDictionary.Version.init(bytes:)).flatMap { $0.id == UInt32(stream.adler) ? $0 : nil }
                    guard let dictionary = own ?? PayloadDictionary.version(id: UInt32(stream.adler)) else {
                        throw Failure(description: "payload compressed with an unknown dictionary \(stream.adler)")
                    }
                    let set = dictionary.bytes.withUnsafeBufferPointer {
                        inflateSetDictionary(&stream, $0.baseAddress, uInt($0.count))
                    }
                    guard set == Z_OK else { throw Failure(description: "inflateSetDictionary: \(set)") }
                case Z_BUF_ERROR where size == nil && stream.avail_out == 0:
                    output.append(contentsOf: repeatElement(0, count: output.count))  // unknown size: grow
                default:
                    throw Failure(description: "inflate: \(status)")
                }
            }
        }
        if let size, produced != size { throw Failure(description: "payload is \(produced) bytes, \(size) recorded") }
        output.removeLast(output.count - produced)
        return output
    }
}
