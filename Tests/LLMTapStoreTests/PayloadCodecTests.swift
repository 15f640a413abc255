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
            #expect(compressed[1] & 0x20 != 0)  // RFC 1950 FDICT: a preset dictionary, named next
            let id = compressed[2..<6].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            #expect(id == PayloadDictionary.current.id)
            #expect(try PayloadCodec.decompress(compressed, size: bytes.count) == bytes)
        }
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
        let id = compressed[2..<6].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        #expect(id == PayloadDictionary.currentPieces.id && id != PayloadDictionary.current.id)
        #expect(try PayloadCodec.decompress(compressed, size: nil) == message)
        #expect(compressed.count < plainZlibSize(message) - 10, "\(compressed.count) vs \(plainZlibSize(message))")
    }

    @Test func wrongSizesAndUnknownDictionariesAreErrors() throws {
        let compressed = try PayloadCodec.Compressor().compress(Self.request)
        #expect(throws: (any Error).self) { try PayloadCodec.decompress(compressed, size: Self.request.count - 1) }
        #expect(throws: (any Error).self) { try PayloadCodec.decompress(compressed, size: Self.request.count + 1) }
        var foreign = compressed
        foreign[5] ^= 0xFF  // another dictionary id
        #expect(throws: (any Error).self) { try PayloadCodec.decompress(foreign, size: Self.request.count) }
    }
}

/// Plain zlib (no dictionary), as payloads were stored before dictionaries, for comparison.
func plainZlibSize(_ bytes: [UInt8]) -> Int {
    var size = compressBound(uLong(bytes.count))
    var output = [UInt8](repeating: 0, count: Int(size))
    let status = compress2(&output, &size, bytes, uLong(bytes.count), Z_DEFAULT_COMPRESSION)
    return status == Z_OK ? Int(size) : Int.max
}
