import Foundation
import LLMTapCore
@testable import LLMTapServer
import LLMTapTestSupport
import Testing

/// The Grafana dashboards in `dashboards/` query only what llmtap has: every metric name
/// in a Prometheus expression is in `/metrics`, and every JSON API path is documented.
struct DashboardsTests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("dashboards")

    static func targets(_ file: String) throws -> [JSONValue] {
        let data = try Data(contentsOf: directory.appendingPathComponent(file))
        let dashboard = try #require(JSONValue.parse(Array(data)))
        return (dashboard["panels"]?.arrayValue ?? []).flatMap { $0["targets"]?.arrayValue ?? [] }
    }

    @Test func prometheusDashboardQueriesExistingMetrics() async throws {
        let expressions = try Self.targets("llmtap-prometheus.json").compactMap { $0["expr"]?.stringValue }
        #expect(expressions.count >= 10)
        _ = try await Tap.run { tap in
            try await tap.makeHistory()
            let exposition = try await tap.api("/metrics").body
            let families = Set(
                exposition.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { String($0.split(separator: " ")[2]) })
            #expect(families.contains("llmtap_calls_total"))
            let metric = try Regex(#"llmtap_[a-z_]+"#)
            for expression in expressions {
                for match in expression.matches(of: metric) {
                    var name = String(expression[match.range])
                    for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) && !families.contains(name) {
                        name.removeLast(suffix.count)
                    }
                    #expect(families.contains(name), "\(name) (in \(expression)) is not in /metrics")
                }
            }
        }
    }

    @Test func apiDashboardCallsDocumentedPaths() throws {
        let urls = try Self.targets("llmtap-api.json").compactMap { $0["url"]?.stringValue }
        #expect(urls.count >= 8)
        let document = try #require(JSONValue.parse(Array(OpenAPIDocument.text.utf8)))
        let paths = try #require(document["paths"]?.objectValue)
        for url in urls {
            let path = try #require(url.firstRange(of: "/api/").map { String(url[$0.lowerBound...]) })
            let route = String(path.split(separator: "?", maxSplits: 1)[0])
            #expect(paths[route]?["get"] != nil, "\(route) is not in /openapi.json")
            let documented = Set((paths[route]?["get"]?["parameters"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue })
            let query = path.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
            for pair in query.split(separator: "&") {
                let name = String(pair.split(separator: "=")[0])
                #expect(documented.contains(name), "\(route) has no documented parameter \(name)")
            }
        }
    }
}
