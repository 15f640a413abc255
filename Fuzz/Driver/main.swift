// llmtap-fuzz: the fuzz targets of FuzzTargets.swift.
//
// Built by Fuzz/run.sh with `-sanitize=fuzzer,address -DFUZZING`, it is a libFuzzer binary:
// LLMTAP_FUZZ_TARGET=sse llmtap-fuzz [libFuzzer flags] [corpus dirs]. Built plainly (as
// `swift build` does), it replays inputs: llmtap-fuzz TARGET FILE...
import Foundation
import LLMTapFuzzTargets

#if FUZZING
// SwiftPM links executables with main pointing at this module's entry point, so libFuzzer's
// own main is not used; its documented driver entry, LLVMFuzzerRunDriver, is called instead.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

nonisolated(unsafe) var selected: ([UInt8]) -> Void = { _ in }
guard let name = ProcessInfo.processInfo.environment["LLMTAP_FUZZ_TARGET"], let target = FuzzTargets.all[name] else {
    FileHandle.standardError.write(Data("set LLMTAP_FUZZ_TARGET to one of \(FuzzTargets.all.keys.sorted())\n".utf8))
    exit(2)
}
selected = target
var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(
    LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        selected(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
        return 0
    })
#else
let arguments = CommandLine.arguments.dropFirst()
guard let name = arguments.first, let target = FuzzTargets.all[name] else {
    print("usage: llmtap-fuzz TARGET FILE...   (targets: \(FuzzTargets.all.keys.sorted().joined(separator: ", ")))")
    exit(2)
}
for file in arguments.dropFirst() {
    guard let data = FileManager.default.contents(atPath: file) else { continue }
    target(Array(data))
}
print("\(arguments.count - 1) inputs replayed through \(name)")
#endif
