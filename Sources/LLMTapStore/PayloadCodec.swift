import CZlib
import Foundation

/// Compression of the raw request and response bytes, messages and request fragments: DEFLATE
/// (RFC 1951) with a preset dictionary of the strings chat payloads repeat
/// (`PayloadDictionary`) — a 1 KB body has little to compress against on its own. The stored
/// `*_size` columns keep the original lengths, and decompression gives back the exact bytes.
///
/// A blob is one byte naming its dictionary, then raw DEFLATE (`Format`): zlib's own framing
/// (RFC 1950) spent 10 bytes on it — a 2-byte header, the dictionary's 4-byte Adler-32 and a
/// 4-byte checksum of the output, which the audit chain and the stored sizes already cover —
/// on every message, fragment and payload (~60 bytes of a 20-turn session call's ~1.9 KB).
/// Blobs written as zlib streams before (their first byte's low nibble is 8, RFC 1950's CM)
/// read as before.
///
/// zlib is called directly: CompressNIO, which llmtap uses for HTTP content codings, has no
/// way to set a dictionary.
enum PayloadCodec {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The first byte of a blob written since raw DEFLATE: which dictionary it needs. No value
    /// has 8 as its low nibble, so none is the first byte of a zlib stream.
    enum Format {
        static let plain: UInt8 = 0x01
        /// Compressed against a dictionary of its own, which the reader supplies (a request
        /// fragment against its message's JSON).
        static let against: UInt8 = 0x02
        /// `PayloadDictionary.versions[k]` is 0x10 | k, `pieceVersions[k]` 0x20 | k (k < 8).
        static func tag(_ dictionary: PayloadDictionary.Version) -> UInt8 {
            if let k = PayloadDictionary.versions.firstIndex(where: { $0.id == dictionary.id }) { return 0x10 | UInt8(k) }
            let k = PayloadDictionary.pieceVersions.firstIndex { $0.id == dictionary.id }!
            return 0x20 | UInt8(k)
        }

        static func dictionary(_ tag: UInt8) -> PayloadDictionary.Version? {
            let (family, k) = (tag & 0xF0, Int(tag & 0x07))
            let versions = family == 0x10 ? PayloadDictionary.versions : family == 0x20 ? PayloadDictionary.pieceVersions : []
            return tag & 0x08 == 0 && k < versions.count ? versions[k] : nil
        }
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
            // Window bits -15: raw DEFLATE, no zlib header or checksum.
            let status = deflateInit2_(
                stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                Int32(MemoryLayout<z_stream>.size))
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
            let bound = Int(deflateBound(stream, uLong(bytes.count))) + 1
            if scratch.count < bound { scratch = [UInt8](repeating: 0, count: max(bound, scratch.count * 2)) }
            scratch[0] = against != nil ? Format.against : dictionary.map(Format.tag) ?? Format.plain
            let status = bytes.withUnsafeBufferPointer { input in
                scratch.withUnsafeMutableBufferPointer { out -> Int32 in
                    stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
                    stream.pointee.avail_in = uInt(input.count)
                    stream.pointee.next_out = out.baseAddress! + 1
                    stream.pointee.avail_out = uInt(out.count - 1)
                    return deflate(stream, Z_FINISH)
                }
            }
            guard status == Z_STREAM_END else { throw Failure(description: "deflate: \(status)") }
            return Data(scratch[..<(1 + Int(stream.pointee.total_out))])
        }
    }

    static func compress(_ bytes: [UInt8]) throws -> Data {
        try Compressor().compress(bytes)
    }

    /// A piece of a body (a message, a request fragment), with the pieces' dictionary.
    static func compressPiece(_ bytes: [UInt8]) throws -> Data {
        try Compressor(dictionary: PayloadDictionary.currentPieces).compress(bytes)
    }

    /// The original bytes; a blob names the dictionary it was compressed with (`Format`; a zlib
    /// stream by its Adler-32) and gets it here. `size`: the recorded length, checked; nil when
    /// unknown (messages, fragment templates), the output then grows as needed.
    /// - Parameter against: the dictionary a payload was compressed `against`, if any.
    static func decompress(_ data: Data, size: Int?, against: [UInt8]? = nil) throws -> [UInt8] {
        let input = [UInt8](data)
        guard !input.isEmpty else { throw Failure(description: "payload is empty") }
        var stream = z_stream()
        var start = 0
        var preset: [UInt8]?  // a raw stream's dictionary, set before inflating
        if let tag = input.first, tag & 0x0F != 8 {
            start = 1
            switch tag {
            case Format.plain: break
            case Format.against:
                guard let against else { throw Failure(description: "payload compressed against a dictionary not given") }
                preset = against
            default:
                guard let dictionary = Format.dictionary(tag) else { throw Failure(description: "payload format \(tag) unknown") }
                preset = dictionary.bytes
            }
        }
        guard inflateInit2_(&stream, start == 1 ? -15 : 15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw Failure(description: "inflateInit failed")
        }
        defer { inflateEnd(&stream) }
        if let preset {
            let set = preset.withUnsafeBufferPointer { inflateSetDictionary(&stream, $0.baseAddress, uInt($0.count)) }
            guard set == Z_OK else { throw Failure(description: "inflateSetDictionary: \(set)") }
        }
        // One spare byte: more output than recorded is an error.
        var output = [UInt8](repeating: 0, count: size.map { $0 + 1 } ?? max(4096, data.count * 4))
        var produced = 0
        try input.withUnsafeBufferPointer { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress! + start)
            stream.avail_in = uInt(input.count - start)
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
                case Z_NEED_DICT:  // a zlib stream names its dictionary
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
