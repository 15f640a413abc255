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

    /// The last event, when the stream ended without a final blank line.
    public mutating func finish(_ onEvent: (SSEEvent) -> Void) {
        while let event = try? decoder.decodeLast(buffer: &pending, seenEOF: true) { onEvent(event) }
    }
}
