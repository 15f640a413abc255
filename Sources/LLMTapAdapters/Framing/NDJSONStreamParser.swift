import NIOCore

/// Splits a newline-delimited JSON stream (Ollama's `application/x-ndjson`) into
/// lines across reads: `\n` or `\r\n` ends a line, empty lines are skipped, and a
/// last line without a newline is still delivered at the end.
public struct NDJSONStreamParser: Sendable {
    private var pending: [UInt8] = []
    /// Bytes of `pending` already searched for a newline: a long line is scanned once.
    private var searched = 0
    /// A line longer than this is dropped from parsing (the bytes still reach the client and the record).
    public let maximumLineBytes: Int

    public init(maximumLineBytes: Int = 64 << 20) {
        self.maximumLineBytes = maximumLineBytes
    }

    public mutating func feed(_ chunk: ByteBuffer, _ onLine: (ArraySlice<UInt8>) -> Void) {
        pending.append(contentsOf: chunk.readableBytesView)
        var start = 0
        var from = searched  // what earlier reads left is known to have no newline
        while let newline = pending[from...].firstIndex(of: UInt8(ascii: "\n")) {
            deliver(pending[start..<newline], onLine)
            start = newline + 1
            from = start
        }
        pending.removeFirst(start)
        if pending.count > maximumLineBytes { pending.removeAll() }
        searched = pending.count
    }

    public mutating func finish(_ onLine: (ArraySlice<UInt8>) -> Void) {
        deliver(pending[...], onLine)
        pending.removeAll()
        searched = 0
    }

    private func deliver(_ line: ArraySlice<UInt8>, _ onLine: (ArraySlice<UInt8>) -> Void) {
        var line = line
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        if !line.isEmpty { onLine(line) }
    }
}
