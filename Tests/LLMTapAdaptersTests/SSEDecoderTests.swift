import LLMTapAdapters
import NIOCore
import NIOTestUtils
import Testing

struct SSEDecoderTests {
    @Test func framesEventsByteByByteAndManyPerBuffer() throws {
        // The verifier drip-feeds each input one byte at a time and all at once.
        try ByteToMessageDecoderVerifier.verifyDecoder(
            stringInputOutputPairs: [
                ("data: {\"a\":1}\n\n", [SSEEvent(data: "{\"a\":1}")]),
                ("data: one\r\n\r\ndata: two\r\n\r\n", [SSEEvent(data: "one"), SSEEvent(data: "two")]),
                (": keep-alive\n\ndata: x\n\n", [SSEEvent(data: "x")]),
                ("event: message_stop\ndata: {}\n\n", [SSEEvent(event: "message_stop", data: "{}")]),
                ("data: line1\ndata: line2\n\n", [SSEEvent(data: "line1\nline2")]),
                ("data:nospace\r\rdata: y\n\n", [SSEEvent(data: "nospace"), SSEEvent(data: "y")]),
            ],
            decoderFactory: { SSEDecoder() }
        )
    }

    @Test func lastEventIDPersists() {
        var parser = SSEStreamParser()
        var events: [SSEEvent] = []
        parser.feed(ByteBuffer(string: "id: 7\ndata: a\n\ndata: b\n\n")) { events.append($0) }
        #expect(events == [SSEEvent(data: "a", id: "7"), SSEEvent(data: "b", id: "7")])
    }

    @Test func dispatchesPendingDataAtEndOfStream() {
        var parser = SSEStreamParser()
        var events: [SSEEvent] = []
        parser.feed(ByteBuffer(string: "data: [DONE]\n\ndata: tail")) { events.append($0) }
        #expect(events == [SSEEvent(data: "[DONE]")])
        parser.finish { events.append($0) }
        #expect(events == [SSEEvent(data: "[DONE]"), SSEEvent(data: "tail")])
    }

    @Test func crlfSplitAcrossReadsIsOneLineEnd() {
        var parser = SSEStreamParser()
        var events: [SSEEvent] = []
        for piece in ["data: a\r", "\n\r", "\ndata: b\r\n", "\r\n"] {
            parser.feed(ByteBuffer(string: piece)) { events.append($0) }
        }
        #expect(events == [SSEEvent(data: "a"), SSEEvent(data: "b")])
    }
}
