// llmtap-bench: the recorder's sustained ingest rate, measured through the real
// Recorder and Store into a fresh SQLite file.
//
//   swift run -c release llmtap-bench [calls] [payload-bytes]
//
// It queues `calls` realistic call records (chat request with a shared system
// prompt, a streamed response), starts the recorder, and prints calls/s from its
// start to the last commit, plus bytes on disk per call. BENCH_NO_CONTEXT=1 leaves
// the context out (no conversation threading) to show what threading costs.
// BENCH_CORPUS=single or session uses realistic one-turn calls or 20-turn sessions
// instead (Corpus.swift), for the size of what is stored. BENCH_PARSE=1 times parsing a
// streamed response instead (ParseBench.swift).
import Foundation
import LLMTapCore
import LLMTapStore
import Logging

if ProcessInfo.processInfo.environment["BENCH_PARSE"] != nil { ParseBench.run(); exit(0) }
let arguments = CommandLine.arguments
let calls = arguments.count > 1 ? Int(arguments[1]) ?? 100_000 : 100_000
let payloadBytes = arguments.count > 2 ? Int(arguments[2]) ?? 2_000 : 2_000

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("llmtap-bench-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
// BENCH_KEEP=1 keeps the database (its path is printed) to look at where the bytes go.
defer { if ProcessInfo.processInfo.environment["BENCH_KEEP"] == nil { try? FileManager.default.removeItem(at: directory) } else { print("kept \(path)") } }
let path = directory.appendingPathComponent("bench.sqlite").path

let system = String(repeating: "You are a careful assistant. Answer briefly and cite sources. ", count: max(1, payloadBytes / 64))
func record(_ n: Int) -> CallRecord {
    var r = CallRecord(
        createdAt: Date().timeIntervalSince1970, provider: "openai", endpoint: "/v1/chat/completions",
        apiFormat: "openai.chat", latencyS: 0.8)
    r.model = "gpt-4o-mini"
    r.sessionID = "session-\(n / 20)"
    r.sessionSource = .header
    r.parameters = .object(["temperature": .double(0.2), "max_tokens": .int(256)])
    let messages: JSONValue = .array([
        .object(["role": .string("system"), "content": .string(system)]),
        .object(["role": .string("user"), "content": .string("Question number \(n): what is the capital of France?")]),
    ])
    r.context = ProcessInfo.processInfo.environment["BENCH_NO_CONTEXT"] == nil ? messages : nil
    r.chatInput = "Question number \(n): what is the capital of France?"
    r.output = "Paris is the capital of France. (\(n))"
    r.usage = Usage(inputTokens: Int64(payloadBytes / 4), outputTokens: 12)
    r.costNanoUSD = 90_000
    r.ttftS = 0.21
    r.itlS = 0.01
    r.tokensPerSecond = 55
    r.requestBody = Array((#"{"model":"gpt-4o-mini","stream":true,"messages":"# + messages.canonicalText + "}").utf8)
    r.responseBody = Array(
        (0..<12).map { #"data: {"choices":[{"index":0,"delta":{"content":"tok\#($0)"}}]}"# + "\n\n" }.joined().utf8)
    return r
}

var logger = Logger(label: "llmtap-bench")
logger.logLevel = .warning
// BENCH_MERGE_SLICE: keys moved per write once a key merge began (`ContentKeys`); 49152 moves
// a whole merge in one transaction.
let store = try Store(
    path: path,
    keysMergedPerWrite: ProcessInfo.processInfo.environment["BENCH_MERGE_SLICE"].flatMap(Int.init)
        ?? ContentKeys.defaultMergeSlice)
var configuration = Recorder.Configuration()
configuration.capacity = calls  // the whole load queued at once: this measures the writer, not the producer
configuration.capacityBytes = .max
if let size = ProcessInfo.processInfo.environment["BENCH_BATCH"].flatMap(Int.init) { configuration.batchSize = size }
let recorder = Recorder(store: store, spool: Spool(path: path + ".spool"), configuration: configuration, logger: logger)
var corpus = Corpus(seed: 2026)
let records: [CallRecord] =
    switch ProcessInfo.processInfo.environment["BENCH_CORPUS"] {
    case "single": corpus.single(count: calls)
    case "session": corpus.sessions(count: calls)
    default: (0..<calls).map(record)
    }
let requestBytes = records.reduce(0) { $0 + $1.requestBody.count + $1.responseBody.count }

/// Bytes this process has handed to `write`/`pwrite` and taken from `read`/`pread` (Linux's
/// `/proc/self/io`; nil elsewhere): what the database costs in I/O beyond what it keeps.
func ioBytes() -> (written: Int, read: Int)? {
    guard let text = try? String(contentsOfFile: "/proc/self/io", encoding: .utf8) else { return nil }
    var fields: [Substring: Int] = [:]
    for line in text.split(separator: "\n") {
        let parts = line.split(separator: ":")
        if parts.count == 2 { fields[parts[0]] = Int(parts[1].trimmingCharacters(in: .whitespaces)) }
    }
    guard let written = fields["wchar"], let read = fields["rchar"] else { return nil }
    return (written, read)
}

/// CPU seconds this process has used, all threads, user and system.
func processCPU() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

let ioBefore = ioBytes()
for r in records { recorder.submit(r) }
let clock = ContinuousClock()
let cpuBefore = processCPU()
let start = clock.now
let runner = Task { try await recorder.run() }
// Polled every 10 ms (a millisecond's polling took ~3 % of the CPU the recorder uses): a run of
// tens of seconds is timed to within 0.1 %.
while recorder.stats.written < calls { try await Task.sleep(for: .milliseconds(10)) }
let elapsed = clock.now - start
let cpu = processCPU() - cpuBefore
runner.cancel()

let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
let stats = recorder.stats
let cost = recorder.costPerCall
// Closing the last connection checkpoints the WAL into the database: the size is what stays.
try store.close()
let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
let diskBytes = files.reduce(0) { total, file in
    total + (((try? FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(file).path))?[.size] as? Int) ?? 0)
}
print("calls            \(calls)")
print("elapsed          \(String(format: "%.2f", seconds)) s")
print("ingest rate      \(Int(Double(calls) / seconds)) calls/s")
print("batches          \(stats.batches) (mean \(calls / max(stats.batches, 1)) calls per transaction)")
print("per call         \(String(format: "%.0f", cost.preparing / 1000)) µs preparing (its threads' time, summed), \(String(format: "%.0f", cost.writing / 1000)) µs writing (the one writer thread)")
// What the recorder used of the machine (this process, all threads): the figures above are each
// part's wall time while it ran, so a thread waiting for a core counts as busy there.
print("CPU              \(String(format: "%.0f", cpu / Double(calls) * 1e6)) µs a call, \(String(format: "%.2f", cpu / seconds)) of \(ProcessInfo.processInfo.activeProcessorCount) cores busy")
print("longest write    \(String(format: "%.0f", stats.longestWrite * 1000)) ms (one transaction)")
print("spooled/dropped  \(stats.spooled)/\(stats.dropped)")
print("raw bytes/call   \(requestBytes / calls)")
print("disk bytes/call  \(diskBytes / calls) (database, WAL checkpointed)")
print("disk / raw       \(String(format: "%.1f", 100 * Double(diskBytes) / Double(max(requestBytes, 1)))) %")
if let before = ioBefore, let after = ioBytes() {
    // The log, the checkpoints and the final checkpoint at close; reads the page cache missed.
    print("I/O bytes/call   \((after.written - before.written) / calls) written, \((after.read - before.read) / calls) read")
}
