import Foundation

/// A mergeable quantile sketch: a histogram over logarithmic buckets (DDSketch, Masson, Rim
/// and Lee, VLDB 2019), so any quantile it gives is within 1 % of the true value, and sketches
/// of different hours add up (or subtract, when calls are deleted) to the sketch of them all.
///
/// The rollup keeps one per hour × provider × model × key for latency, TTFT, inter-token
/// latency and tokens/s, so `/api/stats` merges a few hundred small sketches instead of
/// sorting every call's value. Scanned calls go through a sketch too, so both paths give the
/// same answer. Written here rather than taken from a package: none of the Swift server
/// packages available has one, and the whole of it is the 170 lines below.
public struct Sketch: Sendable, Equatable {
    /// Every quantile is within this relative error of the exact nearest-rank value.
    public static let relativeAccuracy = 0.01
    static let gamma = (1 + relativeAccuracy) / (1 - relativeAccuracy)
    static let logGamma = log(gamma)
    /// Values at or under this (zero, negatives) share one bucket and read back as 0.
    static let smallest = 1e-9
    static let zeroIndex = Int32.min

    /// Bucket indices in ascending order, and the values counted in each (never 0). Sorted
    /// arrays rather than a dictionary: the writer decodes, merges and encodes an hour's four
    /// sketches in every batch's transaction, and with a dictionary that hashing and the sort
    /// before each encoding were ~6 % of the recorder's CPU on 20-chunk streams at one
    /// connection. In order, decoding appends, encoding and quantiles walk, and a merge is one
    /// pass over both.
    private var indices: [Int32] = []
    private var counts: [Int] = []
    public private(set) var count = 0

    public init() {}

    static func index(_ value: Double) -> Int32 {
        guard value > smallest else { return zeroIndex }
        guard value.isFinite else { return Int32.max }
        return Int32((log(value) / logGamma).rounded(.up))
    }

    /// The value a bucket stands for: within `relativeAccuracy` of every value in it.
    static func value(_ index: Int32) -> Double {
        index == zeroIndex ? 0 : 2 * pow(gamma, Double(index)) / (gamma + 1)
    }

    public mutating func add(_ value: Double) {
        guard !value.isNaN else { return }
        add(n: 1, to: Self.index(value))
        count += 1
    }

    /// Counts `n` more values in bucket `index`, keeping the order.
    private mutating func add(n: Int, to index: Int32) {
        var low = 0
        var high = indices.count
        if let last = indices.last, last < index {
            low = high  // in order: decoding, and most values of a batch
        }
        while low < high {
            let middle = (low + high) / 2
            if indices[middle] < index { low = middle + 1 } else { high = middle }
        }
        if low < indices.count, indices[low] == index {
            counts[low] += n
        } else {
            indices.insert(index, at: low)
            counts.insert(n, at: low)
        }
    }

    public mutating func merge(_ other: Sketch) {
        combine(other, sign: 1)
        count += other.count
    }

    /// Takes away values counted before (calls deleted by retention).
    public mutating func subtract(_ other: Sketch) {
        combine(other, sign: -1)
        count = counts.reduce(0, +)
    }

    /// One pass over both sketches' buckets in order, `other`'s counts added (`sign` 1) or taken
    /// away (-1); a bucket left with no value is dropped.
    private mutating func combine(_ other: Sketch, sign: Int) {
        guard !other.indices.isEmpty else { return }
        var mergedIndices: [Int32] = []
        var mergedCounts: [Int] = []
        mergedIndices.reserveCapacity(indices.count + other.indices.count)
        mergedCounts.reserveCapacity(indices.count + other.indices.count)
        var (i, j) = (0, 0)
        while i < indices.count || j < other.indices.count {
            let index: Int32
            let n: Int
            if j == other.indices.count || (i < indices.count && indices[i] < other.indices[j]) {
                (index, n) = (indices[i], counts[i])
                i += 1
            } else if i == indices.count || other.indices[j] < indices[i] {
                (index, n) = (other.indices[j], sign * other.counts[j])
                j += 1
            } else {
                (index, n) = (indices[i], counts[i] + sign * other.counts[j])
                i += 1
                j += 1
            }
            if n > 0 {
                mergedIndices.append(index)
                mergedCounts.append(n)
            }
        }
        (indices, counts) = (mergedIndices, mergedCounts)
    }

    /// The nearest-rank quantile (`p` in 0...1), within `relativeAccuracy`; nil when empty.
    public func quantile(_ p: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = min(count, max(1, Int((p * Double(count)).rounded(.up))))
        var seen = 0
        for (index, n) in zip(indices, counts) {
            seen += n
            if seen >= rank { return Self.value(index) }
        }
        return nil
    }

    /// Bytes for the database: a version byte, then for each bucket in index order the
    /// difference from the previous index (zigzag) and the count, as LEB128 varints.
    public var encoded: [UInt8] {
        var bytes: [UInt8] = [1]
        bytes.reserveCapacity(1 + 4 * indices.count)
        var previous: Int64 = 0
        for (index, n) in zip(indices, counts) {
            let delta = Int64(index) - previous
            previous = Int64(index)
            Self.writeVarint(UInt64(bitPattern: (delta << 1) ^ (delta >> 63)), to: &bytes)
            Self.writeVarint(UInt64(n), to: &bytes)
        }
        return bytes
    }

    /// Nil for bytes that are not a sketch (another version, cut short, out of range).
    public init?(encoded bytes: [UInt8]) {
        guard bytes.first == 1 else { return nil }
        var position = 1
        var previous: Int64 = 0
        while position < bytes.count {
            guard let zigzag = Self.readVarint(bytes, &position), let n = Self.readVarint(bytes, &position),
                n > 0, n <= UInt64(Int32.max)
            else { return nil }
            let delta = Int64(bitPattern: zigzag >> 1) ^ -Int64(bitPattern: zigzag & 1)
            let (index, overflow) = previous.addingReportingOverflow(delta)
            guard !overflow, let index32 = Int32(exactly: index) else { return nil }
            previous = index
            add(n: Int(n), to: index32)
            count += Int(n)
        }
    }

    static func writeVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    /// Nil for a varint cut short or longer than 64 bits.
    static func readVarint(_ bytes: [UInt8], _ position: inout Int) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while position < bytes.count, shift < 64 {
            let byte = bytes[position]
            position += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
        return nil
    }
}
