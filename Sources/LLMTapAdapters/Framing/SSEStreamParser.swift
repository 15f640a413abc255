import NIOCore

/// Drives an `SSEDecoder` over the reads of one response, keeping the bytes of
/// an incomplete event between reads. (NIO's `NIOSingleStepByteToMessageProcessor`
/// does the same but is not `Sendable`, and the tee moves this across tasks.)
public struct SSEStreamParser: Sendable {
    private var decoder = SSEDecoder()
    private var pending = ByteBuffer()
    /// An event larger than this is dropped from parsing (the bytes still reach the client and the record).
    public let maximumEventBytes: Int

    public init(maximumEventBytes: Int = 64 << 20) {
        self.maximumEventBytes = maximumEventBytes
    }

    /// The events completed by this read.
    public mutating func feed(_ chunk: ByteBuffer, _ onEvent: (SSEEvent) -> Void) {
        pending.writeImmutableBuffer(chunk)
        while let event = try? decoder.decode(buffer: &pending) { onEvent(event) }
        if pending.readableBytes > maximumEventBytes {
            pending.clear()
            decoder = SSEDecoder()
        } else if pending.readerIndex > 4096 {
            pending.discardReadBytes()
        }
    }

    /// A whole body at once, with where each of the reads it came in ended (offsets into
    /// `body`'s readable bytes, ascending, the last its end) and when: each event is handed
    /// the time of the read that brought its last byte — what feeding the reads one by one
    /// gives, without copying each into the pending bytes. (One difference: a `\r` ending a
    /// line at the very end of a read is timed by that read, not the next, which read by read
    /// had to wait for in case a `\n` followed.) An event larger than `maximumEventBytes` is
    /// dropped, as read by read.
    public mutating func feed(
        _ body: ByteBuffer, readEnds reads: [(end: Int, time: UInt64)], _ onEvent: (SSEEvent, UInt64) -> Void
    ) {
        guard let last = reads.last else { return }
        let bytes = body.getSlice(at: body.readerIndex, length: last.end)!
        // The start of an event an earlier `feed` left pending, if any, goes before the body.
        let carried = pending.readableBytes
        if carried == 0 { pending = bytes } else { pending.writeImmutableBuffer(bytes) }
        let base = pending.readerIndex + carried
        var read = 0
        var eventStart = -carried
        while let event = try? decoder.decode(buffer: &pending) {
            let end = pending.readerIndex - base
            while read < reads.count - 1, reads[read].end < end { read += 1 }
            if end - eventStart <= maximumEventBytes { onEvent(event, reads[read].time) }
            eventStart = end
        }
        if pending.readableBytes > maximumEventBytes {
            pending.clear()
            decoder = SSEDecoder()
        }
    }

    /// The last event, when the stream ended without a final blank line.
    public mutating func finish(_ onEvent: (SSEEvent) -> Void) {
        while let event = try? decoder.decodeLast(buffer: &pending, seenEOF: true) { onEvent(event) }
    }
}
