import LLMTapCore
import NIOCore

/// One server-sent event (WHATWG HTML §9.2): the `event` type, the `data`
/// lines joined by `\n`, and the `id` if one was given.
public struct SSEEvent: Sendable, Hashable {
    public var event: String?
    public var data: String
    public var id: String?

    public init(event: String? = nil, data: String, id: String? = nil) {
        self.event = event
        self.data = data
        self.id = id
    }
}

/// Frames a byte stream into server-sent events.
///
/// Lines end in `\n`, `\r\n` or `\r` (a `\r` that ends the buffer waits for
/// the next byte, so a `\r\n` split across two TCP reads is one line end);
/// lines starting with `:` are comments (keep-alives) and are skipped; an
/// event is dispatched at a blank line. Unlike the browser algorithm, data left
/// pending when the stream ends is still dispatched, so a stream whose server
/// forgot the final blank line (or that was cut) loses nothing.
public struct SSEDecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    public typealias InboundOut = SSEEvent

    private var data: [UInt8] = []
    private var hasData = false
    private var eventType: String?
    private var lastID: String?
    /// Bytes at the front of the buffer already searched for a line end: a line split over
    /// many reads (a 10 MB `data:` line) is scanned once, not once per read.
    private var searched = 0

    public init() {}

    public mutating func decode(buffer: inout ByteBuffer) throws -> SSEEvent? {
        try decode(buffer: &buffer, atEOF: false)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> SSEEvent? {
        if let event = try decode(buffer: &buffer, atEOF: true) { return event }
        // A last line without a line end, then whatever is pending.
        if buffer.readableBytes > 0, let line = buffer.readBytes(length: buffer.readableBytes) {
            processLine(line[...])
        }
        return dispatch()
    }

    private mutating func decode(buffer: inout ByteBuffer, atEOF: Bool) throws -> SSEEvent? {
        while true {
            // Searched as raw bytes, not through `ByteBufferView`'s indices (on 20-chunk streams
            // the decoder took ~40 % less of the recorder's time), a word at a time.
            let step = buffer.withUnsafeReadableBytes { bytes -> (consumed: Int, isBlank: Bool)? in
                let end = ByteSearch.lineEnd(bytes, from: min(searched, bytes.count))
                guard end < bytes.count else {
                    searched = bytes.count
                    return nil
                }
                var terminatorLength = 1
                if bytes[end] == UInt8(ascii: "\r") {
                    if end + 1 == bytes.count {
                        if !atEOF {  // the `\n` of a `\r\n` may be in the next read
                            searched = end
                            return nil
                        }
                    } else if bytes[end + 1] == UInt8(ascii: "\n") {
                        terminatorLength = 2
                    }
                }
                let line = bytes[0..<end]
                if !line.isEmpty { processLine(line) }
                return (end + terminatorLength, line.isEmpty)
            }
            guard let step else { return nil }
            buffer.moveReaderIndex(forwardBy: step.consumed)
            searched = 0
            if step.isBlank, let event = dispatch() { return event }
        }
    }

    private mutating func processLine<Line: Collection<UInt8>>(_ line: Line) {
        guard let first = line.first, first != UInt8(ascii: ":") else { return }
        let field: Line.SubSequence
        var value: Line.SubSequence
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            field = line[line.startIndex..<colon]
            value = line[line.index(after: colon)...]
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        } else {
            field = line[...]
            value = line[line.endIndex...]
        }
        switch String(decoding: field, as: UTF8.self) {
        case "data":
            if hasData { data.append(UInt8(ascii: "\n")) }
            data.append(contentsOf: value)
            hasData = true
        case "event":
            eventType = String(decoding: value, as: UTF8.self)
        case "id":
            lastID = String(decoding: value, as: UTF8.self)
        default:
            break  // `retry` and unknown fields are ignored
        }
    }

    private mutating func dispatch() -> SSEEvent? {
        defer {
            data.removeAll(keepingCapacity: true)
            hasData = false
            eventType = nil
        }
        guard hasData else { return nil }
        return SSEEvent(event: eventType, data: String(decoding: data, as: UTF8.self), id: lastID)
    }
}
