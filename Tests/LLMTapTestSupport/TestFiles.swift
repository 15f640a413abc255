import Foundation

/// Where tests keep their files: one directory per test process in the system's temporary
/// directory, removed when the process exits. Tests get a fresh directory (or path) inside
/// it and never remove their own — many return a `Store` whose files they read to the end.
public enum TestFiles {
    /// A new, empty directory for one test's database, spool and key files.
    public static func directory() throws -> URL {
        let url = root.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A path for one new file (not created), named `<uuid>.<ext>`.
    public static func path(extension ext: String) -> String {
        root.appendingPathComponent("\(UUID().uuidString).\(ext)").path
    }

    private static let root: URL = {
        let url = rootURL()
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: rootURL()) }
        return url
    }()

    private static func rootURL() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("llmtap-tests-\(getpid())")
    }
}

/// Polls `condition` every 10 ms for up to `seconds`. The deadline is generous: in the whole
/// suite on two busy cores a step that takes 0.5 s alone took 11 s (and failed at 5 s); it only
/// costs time when a test fails anyway.
public func eventually(_ seconds: Double = 20, _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try condition()
}
