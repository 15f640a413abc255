import CZlib
import Foundation
import Testing

@testable import LLMTapStore

struct PayloadCodecTests {
    static let request = Array(
        #"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is the capital of France?"}],"temperature":0.7,"stream":true,"stream_options":{"include_usage":true}}"#
            .utf8)
    static let response = Array(
        (["Paris", " is", " the", " capital", "."].map {
            #"data: {"id":"chatcmpl-AZ9tDd5yyEmYwWZJf1xWNEyUwHkLx","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_0aa8d3e20b","choices":[{"index":0,"delta":{"content":"\#($0)"},"logprobs":null,"finish_reason":null}],"usage":null}"#
                + "\n\n"
        }.joined() + "data: [DONE]\n\n").utf8)

    @Test func roundTripsExactlyAndNamesItsDictionary() throws {
        let compressor = try PayloadCodec.Compressor()
        for bytes in [Self.request, Self.response, [], Array("x".utf8), (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }] {
            let compressed = try compressor.compress(bytes)
            #expect(compressed[0] == 0x10 && PayloadCodec.Format.dictionary(compressed[0])?.id == PayloadDictionary.current.id)
            #expect(try PayloadCodec.decompress(compressed, size: bytes.count) == bytes)
        }
    }

    /// Bodies (requests, templates, responses) are zstd frames against the payload dictionary: exact bytes back, any
    /// size, the format byte naming the dictionary; on a short stream a dozen bytes over DEFLATE's
    /// (the frame's header), on the benchmark's corpora of 1 – 25 KB streams as small in total.
    @Test func bodiesAreZstdFramesThatRoundTripExactly() throws {
        let compressor = try PayloadCodec.BodyCompressor()
        let long = (0..<40).flatMap { _ in Self.response }
        // Either side of the size where long bodies take their own settings.
        let edge = [-1, 0, 1].map { Array(long.prefix(PayloadCodec.BodyCompressor.largeFrom + $0)) }
        for bytes in [Self.request, Self.response, long, [], Array("x".utf8), (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }] + edge {
            let compressed = try compressor.compress(bytes)
            #expect(compressed[0] == 0x30 && PayloadCodec.Format.zstdDictionary(compressed[0]) == 0)
            #expect(try PayloadCodec.decompress(compressed, size: bytes.count) == bytes)
            #expect(try PayloadCodec.decompress(compressed, size: nil) == bytes)  // unknown size: the output grows
        }
        let deflated = try PayloadCodec.Compressor().compress(Self.response).count
        let zstd = try compressor.compress(Self.response).count
        #expect(zstd <= deflated + 16, "zstd \(zstd) vs DEFLATE \(deflated) bytes")
        #expect(zstd * 2 < plainZlibSize(Self.response), "the dictionary is used")
    }

    @Test func aDamagedZstdBlobIsAnError() throws {
        let compressed = try PayloadCodec.BodyCompressor().compress(Self.response)
        let size = Self.response.count
        #expect(throws: (any Error).self) { try PayloadCodec.decompress(compressed, size: size - 1) }
        #expect(throws: (any Error).self) { try PayloadCodec.decompress(compressed, size: size + 1) }
        #expect(throws: (any Error).self) { try PayloadCodec.decompress(compressed.dropLast(3), size: size) }
        #expect(throws: (any Error).self) { try PayloadCodec.decompress(compressed.dropLast(3), size: nil) }
        #expect(throws: (any Error).self) { try PayloadCodec.decompress(compressed + [0x00], size: size) }
        var flipped = compressed
        flipped[compressed.count / 2] ^= 0x5A
        #expect((try? PayloadCodec.decompress(flipped, size: size)) != Self.response)
        var unknown = compressed
        unknown[0] = 0x37  // a dictionary version that does not exist
        #expect(throws: (any Error).self) { try PayloadCodec.decompress(unknown, size: size) }
    }

    /// A blob from outside (a backup being imported, a damaged file) is read without a crash or
    /// a hang: damaged frames and noise behind every format byte give an error or some bytes.
    @Test func damagedAndRandomBlobsNeverCrashOrHang() throws {
        var random = SplitMix64(seed: 2026)
        let compressor = try PayloadCodec.BodyCompressor()
        let frames = try [Self.request, Self.response, (0..<40).flatMap { _ in Self.response }].map {
            try compressor.compress($0)
        }
        for round in 0..<3_000 {
            var blob: [UInt8]
            if round % 2 == 0 {
                blob = Array(frames[round % frames.count])
                for _ in 0...(random.next() % 4) { blob[1 + Int(random.next() % UInt64(blob.count - 1))] ^= UInt8(truncatingIfNeeded: random.next() | 1) }
                if random.next() % 3 == 0 { blob.removeLast(Int(random.next() % UInt64(blob.count - 1))) }
            } else {
                let tags: [UInt8] = [0x30, 0x31, 0x10, 0x20, 0x01, 0x02, 0x78]
                blob = [tags[Int(random.next() % UInt64(tags.count))]]
                    + (0..<Int(random.next() % 300)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            }
            for size: Int? in [nil, Self.response.count] {
                _ = try? PayloadCodec.decompress(Data(blob), size: size, against: Self.request)
            }
        }
        #expect(try PayloadCodec.decompress(frames[1], size: Self.response.count) == Self.response)
    }

    /// Blobs written as zlib streams (RFC 1950) before the one-byte format read as before,
    /// with or without a preset dictionary; the format byte saves zlib's 10 bytes of framing.
    @Test func zlibStreamsStillReadAndTheFormatByteIsSmaller() throws {
        for dictionary in [nil, PayloadDictionary.current, PayloadDictionary.currentPieces] {
            let zlib = try zlibStream(Self.request, dictionary: dictionary?.bytes)
            #expect(zlib[0] & 0x0F == 8)
            #expect(try PayloadCodec.decompress(zlib, size: Self.request.count) == Self.request)
            let raw = try PayloadCodec.Compressor(dictionary: dictionary).compress(Self.request)
            #expect(raw.count == zlib.count - (dictionary == nil ? 5 : 9), "\(raw.count) vs \(zlib.count)")
            #expect(try PayloadCodec.decompress(raw, size: Self.request.count) == Self.request)
        }
    }

    @Test func aBlobCompressedAgainstItsOwnDictionaryNeedsIt() throws {
        let message = Array(#"{"content":"What is the capital of France?","role":"user"}"#.utf8)
        let fragment = Array(#"{"role": "user", "content": "What is the capital of France?"}"#.utf8)
        let compressed = try PayloadCodec.Compressor(dictionary: PayloadDictionary.currentPieces).compress(fragment, against: message)
        #expect(compressed[0] == PayloadCodec.Format.against)
        #expect(try PayloadCodec.decompress(compressed, size: fragment.count, against: message) == fragment)
        #expect(throws: (any Error).self) { try PayloadCodec.decompress(compressed, size: fragment.count) }
    }

    @Test func aSmallChatPayloadCompressesFarBetterWithTheDictionary() throws {
        let withDictionary = try PayloadCodec.Compressor()
        let dictionarySize = try withDictionary.compress(Self.request).count + withDictionary.compress(Self.response).count
        let plainSize = plainZlibSize(Self.request) + plainZlibSize(Self.response)
        let raw = Self.request.count + Self.response.count
        #expect(dictionarySize * 2 < plainSize, "\(dictionarySize) vs \(plainSize) of \(raw)")
    }

    /// Messages and request fragments use the short pieces dictionary: named in the header,
    /// smaller than plain zlib on a short message, and read back without being told which.
    @Test func piecesUseTheirOwnDictionary() throws {
        let message = Array(#"{"content":"What is the capital of France, and how far is it from Lyon?","role":"user"}"#.utf8)
        let compressed = try PayloadCodec.compressPiece(message)
        let id = PayloadCodec.Format.dictionary(compressed[0])?.id
        #expect(id == PayloadDictionary.currentPieces.id && id != PayloadDictionary.current.id)
        #expect(try PayloadCodec.decompress(compressed, size: nil) == message)
        #expect(compressed.count < plainZlibSize(message) - 10, "\(compressed.count) vs \(plainZlibSize(message))")
    }

    @Test func wrongSizesAndUnknownDictionariesAreErrors() throws {
        let compressed = try PayloadCodec.Compressor().compress(Self.request)
        #expect(throws: (any Error).self) { try PayloadCodec.decompress(compressed, size: Self.request.count - 1) }
        #expect(throws: (any Error).self) { try PayloadCodec.decompress(compressed, size: Self.request.count + 1) }
        var foreign = compressed
        foreign[0] = 0x17  // a dictionary version that does not exist
        #expect(throws: (any Error).self) { try PayloadCodec.decompress(foreign, size: Self.request.count) }
        var older = try zlibStream(Self.request, dictionary: PayloadDictionary.current.bytes)
        older[5] ^= 0xFF  // a zlib stream naming another dictionary id
        #expect(throws: (any Error).self) { try PayloadCodec.decompress(older, size: Self.request.count) }
        #expect(throws: (any Error).self) { try PayloadCodec.decompress(Data(), size: 0) }
    }
}

/// Plain zlib (no dictionary), as payloads were stored before dictionaries, for comparison.
func plainZlibSize(_ bytes: [UInt8]) -> Int {
    var size = compressBound(uLong(bytes.count))
    var output = [UInt8](repeating: 0, count: Int(size))
    let status = compress2(&output, &size, bytes, uLong(bytes.count), Z_DEFAULT_COMPRESSION)
    return status == Z_OK ? Int(size) : Int.max
}

/// A zlib stream (RFC 1950), as blobs were written before the one-byte format: with a preset
/// dictionary, named by its Adler-32 in the header.
func zlibStream(_ bytes: [UInt8], dictionary: [UInt8]?) throws -> Data {
    var stream = z_stream()
    guard deflateInit_(&stream, Z_DEFAULT_COMPRESSION, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
        throw PayloadCodec.Failure(description: "deflateInit")
    }
    defer { deflateEnd(&stream) }
    if let dictionary { _ = deflateSetDictionary(&stream, dictionary, uInt(dictionary.count)) }
    var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))))
    var input = bytes
    let status = input.withUnsafeMutableBufferPointer { input in
        output.withUnsafeMutableBufferPointer { out in
            stream.next_in = input.baseAddress
            stream.avail_in = uInt(input.count)
            stream.next_out = out.baseAddress
            stream.avail_out = uInt(out.count)
            return deflate(&stream, Z_FINISH)
        }
    }
    guard status == Z_STREAM_END else { throw PayloadCodec.Failure(description: "deflate \(status)") }
    return Data(output[..<Int(stream.total_out)])
}

/// A seeded generator (SplitMix64), so a failing round can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
