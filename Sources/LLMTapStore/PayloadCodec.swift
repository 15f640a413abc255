import CZlib
import CZstd
import Foundation
import Synchronization

/// Compression of the raw request and response bytes, messages and request fragments: zstd
/// (RFC 8878) or DEFLATE (RFC 1951) with a preset dictionary of the strings chat payloads
/// repeat (`PayloadDictionary`) — a 1 KB body has little to compress against on its own. The
/// stored `*_size` columns keep the original lengths, and decompression gives back the exact
/// bytes.
///
/// A blob is one byte naming its format and dictionary, then the compressed bytes (`Format`): zlib's own framing
/// (RFC 1950) spent 10 bytes on it — a 2-byte header, the dictionary's 4-byte Adler-32 and a
/// 4-byte checksum of the output, which the audit chain and the stored sizes already cover —
/// on every message, fragment and payload (~60 bytes of a 20-turn session call's ~1.9 KB).
/// Blobs written as zlib streams before (their first byte's low nibble is 8, RFC 1950's CM)
/// read as before.
///
/// Bodies — a request or its template, a response — are zstd frames against the same
/// dictionary (`BodyCompressor`): zlib digests a dictionary again for every payload it
/// compresses (`deflateSetDictionary`, ~10 µs for the 6 KB one), zstd once per process, and
/// its matcher is two to six times faster on a recorded stream. Pieces (messages, request
/// fragments) stay DEFLATE: against their short dictionary zstd's frames were 6 – 11 bytes
/// larger each, and a 20-turn session call stores two or three new ones.
///
/// zlib is called directly: CompressNIO, which llmtap uses for HTTP content codings, has no
/// way to set a dictionary; no package of the Swift server ecosystem wraps zstd.
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
        /// A zstd frame without its magic number against `PayloadDictionary.versions[k]` is
        /// 0x30 | k (k < 8).
        static func zstdTag(_ dictionary: PayloadDictionary.Version) -> UInt8 {
            0x30 | UInt8(PayloadDictionary.versions.firstIndex { $0.id == dictionary.id }!)
        }

        /// The dictionary of a zstd blob's first byte; nil for any other format.
        static func zstdDictionary(_ tag: UInt8) -> Int? {
            tag & 0xF8 == 0x30 && Int(tag & 0x07) < PayloadDictionary.versions.count ? Int(tag & 0x07) : nil
        }

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
            // Window bits -15: raw DEFLATE, no zlib header or checksum. Pieces take memory level
            // 6: `deflateReset` clears a hash table of 16 KiB instead of 64 (0.7 µs instead of
            // 1.6 per piece), and the corpora's messages compressed to the same bytes.
            let memoryLevel: Int32 = dictionary?.id == PayloadDictionary.currentPieces.id ? 6 : 8
            let status = deflateInit2_(
                stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, memoryLevel, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
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

    /// Compresses bodies (`PayloadCodec`'s note on zstd), one context reused from body to body.
    /// On the recorded streams of the storage benchmark's corpora (1 – 25 KB of SSE) a frame
    /// was within 1 % of DEFLATE's size in total, in a third to a half of its time; a request
    /// template of ~100 – 200 bytes takes ~3 µs instead of ~15, and ~8 bytes more.
    ///
    /// Two settings, by the body's size. Most bodies take level 4 with tables sized for short
    /// ones: level 3 was faster again but 5 % larger, and the dictionary is most of what a short
    /// body matches. From `largeFrom` bytes (long streams) level 4 is slow — zstd searches the
    /// dictionary's tables beside the body's own ("attaching" it) with its lazy matcher: 18 µs
    /// for a 14 KB stream, 23 for 19 KB, 42 for 37 KB — and level 3's double-fast matcher,
    /// attached, takes 6, 7 and 10 µs for 15 – 20 bytes more a body (sweep of 1 – 128-chunk
    /// OpenAI streams; zstd's own choice for them, copying the dictionary's tables, took longer
    /// than either).
    final class BodyCompressor {
        static let level: Int32 = 4
        static let largeLevel: Int32 = 3
        /// The bytes level 3 adds are about the same for any long body while the time it saves
        /// grows with the body, so only the longest take it: from 3 KB the 20-turn corpus came to
        /// 9.98 % of its raw bytes on disk (target ≤ 10 %, 9.83 % with level 4 throughout), from
        /// 16 KB 9.90 % (100 k calls).
        static let largeFrom = 16_384
        private let context: OpaquePointer
        private let largeContext: OpaquePointer
        private let tag: UInt8
        private var scratch: [UInt8] = []

        /// Against `PayloadDictionary.current`, the one new blobs use.
        init() throws {
            context = try Self.context(Digested.current, attach: false)
            do {
                largeContext = try Self.context(Digested.currentLarge, attach: true)
            } catch {
                ZSTD_freeCCtx(context)
                throw error
            }
            tag = Format.zstdTag(PayloadDictionary.current)
        }

        private static func context(_ dictionary: Digested, attach: Bool) throws -> OpaquePointer {
            guard let context = ZSTD_createCCtx() else { throw Failure(description: "ZSTD_createCCtx failed") }
            let settings: [(ZSTD_cParameter, Int32)] = [
                (ZSTD_c_experimentalParam2, Int32(ZSTD_f_zstd1_magicless.rawValue)),  // ZSTD_c_format: the format byte says what it is
                (ZSTD_c_checksumFlag, 0), (ZSTD_c_contentSizeFlag, 0),  // the chain and `*_size` cover these
                (ZSTD_c_dictIDFlag, 0),
                // ZSTD_c_forceAttachDict (a macro Swift does not import): 1 attaches, 0 lets zstd choose.
                (ZSTD_c_experimentalParam4, attach ? Int32(ZSTD_dictForceAttach.rawValue) : Int32(ZSTD_dictDefaultAttach.rawValue)),
            ]
            for (parameter, value) in settings where ZSTD_isError(ZSTD_CCtx_setParameter(context, parameter, value)) != 0 {
                ZSTD_freeCCtx(context)
                throw Failure(description: "zstd parameter \(parameter.rawValue) refused")
            }
            guard ZSTD_isError(ZSTD_CCtx_refCDict(context, dictionary.pointer)) == 0 else {
                ZSTD_freeCCtx(context)
                throw Failure(description: "zstd dictionary refused")
            }
            return context
        }

        deinit {
            ZSTD_freeCCtx(context)
            ZSTD_freeCCtx(largeContext)
        }

        func compress(_ bytes: [UInt8]) throws -> Data {
            let bound = ZSTD_compressBound(bytes.count) + 1
            if scratch.count < bound { scratch = [UInt8](repeating: 0, count: max(bound, scratch.count * 2)) }
            scratch[0] = tag
            let context = bytes.count < Self.largeFrom ? context : largeContext
            let written = bytes.withUnsafeBufferPointer { input in
                scratch.withUnsafeMutableBufferPointer { out in
                    ZSTD_compress2(context, out.baseAddress! + 1, out.count - 1, input.baseAddress, input.count)
                }
            }
            guard ZSTD_isError(written) == 0 else { throw Failure(description: "zstd: \(String(cString: ZSTD_getErrorName(written)))") }
            return Data(scratch[..<(1 + written)])
        }
    }

    /// A dictionary zstd has digested once for the process: zstd documents both kinds as
    /// read-only once made, to be shared by any number of contexts on any threads.
    final class Digested: @unchecked Sendable {
        let pointer: OpaquePointer

        private init(_ pointer: OpaquePointer) { self.pointer = pointer }

        /// For `PayloadDictionary.current`, made on first use (every older version only reads):
        /// for short bodies, and (`currentLarge`) for long ones (`BodyCompressor`).
        static let current = Digested(compressing: PayloadDictionary.current, level: BodyCompressor.level)
        static let currentLarge = Digested(compressing: PayloadDictionary.current, level: BodyCompressor.largeLevel)

        private convenience init(compressing dictionary: PayloadDictionary.Version, level: Int32) {
            let bytes = dictionary.bytes
            let parameters = ZSTD_getCParams(level, 2_048, bytes.count)
            self.init(
                bytes.withUnsafeBytes {
                    ZSTD_createCDict_advanced(
                        $0.baseAddress, $0.count, ZSTD_dlm_byCopy, ZSTD_dct_rawContent, parameters, ZSTD_defaultCMem)
                }!)
        }

        /// Every version's, for reading, in `PayloadDictionary.versions` order.
        static let reading: [Digested] = PayloadDictionary.versions.map { version in
            Digested(version.bytes.withUnsafeBytes { ZSTD_createDDict($0.baseAddress, $0.count) }!)
        }
    }

    /// A zstd blob's bytes (after its format byte), against `PayloadDictionary.versions[k]`.
    private static func decompressZstd(_ input: ArraySlice<UInt8>, dictionary k: Int, size: Int?) throws -> [UInt8] {
        let decoder = try Decoder.idle.withLock { $0.popLast() } ?? Decoder()
        defer { Decoder.idle.withLock { if $0.count < Decoder.kept { $0.append(decoder) } } }
        let context = decoder.pointer
        guard ZSTD_isError(ZSTD_DCtx_reset(context, ZSTD_reset_session_only)) == 0,
            ZSTD_isError(ZSTD_DCtx_refDDict(context, Digested.reading[k].pointer)) == 0
        else { throw Failure(description: "zstd refused its parameters") }
        var output = Output(size: size, compressedCount: input.count)
        try input.withUnsafeBufferPointer { input in
            var source = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
            while true {
                let from = output.produced
                let (remaining, produced) = output.bytes.withUnsafeMutableBufferPointer { out -> (Int, Int) in
                    var target = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: from)
                    let remaining = ZSTD_decompressStream(context, &target, &source)
                    return (remaining, target.pos)
                }
                output.produced = produced
                if ZSTD_isError(remaining) != 0 {
                    throw Failure(description: "zstd: \(String(cString: ZSTD_getErrorName(remaining)))")
                }
                if remaining == 0 {  // the frame is complete
                    guard source.pos == source.size else { throw Failure(description: "bytes after the zstd frame") }
                    return
                }
                if output.produced == output.bytes.count {
                    guard output.grow() else { throw Failure(description: "payload is over its recorded \(size!) bytes") }
                } else if source.pos == source.size {
                    throw Failure(description: "zstd frame is truncated")
                }
            }
        }
        return try output.result()
    }

    /// A zstd decoding context, reused from blob to blob: making one per blob (its allocations)
    /// took ~30 µs where decoding a recorded response takes ~3, and an export reads every
    /// call's bodies. Used by one thread at a time, taken from `idle` and put back.
    private final class Decoder: @unchecked Sendable {
        static let idle = Mutex<[Decoder]>([])
        /// Contexts kept idle at most (~100 KiB each): as many as threads read at once, usually.
        static let kept = 8
        let pointer: OpaquePointer

        init() throws {
            guard let pointer = ZSTD_createDCtx() else { throw Failure(description: "ZSTD_createDCtx failed") }
            self.pointer = pointer
            // ZSTD_d_experimentalParam1 is ZSTD_d_format, a macro Swift does not import; a
            // session reset keeps it.
            guard ZSTD_isError(ZSTD_DCtx_setParameter(pointer, ZSTD_d_experimentalParam1, Int32(ZSTD_f_zstd1_magicless.rawValue))) == 0
            else { throw Failure(description: "zstd refused its format") }
        }

        deinit { ZSTD_freeDCtx(pointer) }
    }

    /// Where a decoder writes: the recorded size and one spare byte (more output than recorded
    /// is an error), or, the size unknown, room that doubles when it is full.
    private struct Output {
        var bytes: [UInt8]
        var produced = 0
        let size: Int?

        init(size: Int?, compressedCount: Int) {
            self.size = size
            bytes = [UInt8](repeating: 0, count: size.map { $0 + 1 } ?? max(4096, compressedCount * 4))
        }

        /// Doubles the room; false, changing nothing, when the size was recorded.
        mutating func grow() -> Bool {
            guard size == nil else { return false }
            bytes.append(contentsOf: repeatElement(0, count: bytes.count))
            return true
        }

        /// The bytes produced, which must be as many as recorded.
        mutating func result() throws -> [UInt8] {
            if let size, produced != size { throw Failure(description: "payload is \(produced) bytes, \(size) recorded") }
            bytes.removeLast(bytes.count - produced)
            return bytes
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
        if let k = Format.zstdDictionary(input[0]) { return try decompressZstd(input[1...], dictionary: k, size: size) }
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
        var output = Output(size: size, compressedCount: data.count)
        try input.withUnsafeBufferPointer { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress! + start)
            stream.avail_in = uInt(input.count - start)
            while true {
                let from = output.produced
                let (status, produced) = output.bytes.withUnsafeMutableBufferPointer { out -> (Int32, Int) in
                    stream.next_out = out.baseAddress.map { $0 + from }
                    stream.avail_out = uInt(out.count - from)
                    let status = inflate(&stream, Z_FINISH)
                    return (status, out.count - Int(stream.avail_out))
                }
                output.produced = produced
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
                    _ = output.grow()  // the size unknown: more room
                default:
                    throw Failure(description: "inflate: \(status)")
                }
            }
        }
        return try output.result()
    }
}
