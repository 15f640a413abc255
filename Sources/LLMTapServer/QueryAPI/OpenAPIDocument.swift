import Foundation

/// The query API's OpenAPI 3.1 document (`Resources/openapi.json`), served at
/// `/openapi.json`; `QueryAPITests` keeps it and the routes in step.
enum OpenAPIDocument {
    static let text: String = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else { return "{}" }
        return text
    }()

    /// Each documented path template (`/api/requests/{id}`) with its methods, upper case.
    static let operations: [(segments: [Substring], methods: Set<String>)] = {
        guard let document = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let paths = document["paths"] as? [String: Any]
        else { return [] }
        return paths.map { path, item in
            let methods = (item as? [String: Any]).map { Set($0.keys.map { $0.uppercased() }) } ?? []
            return (path.split(separator: "/"), methods)
        }
    }()

    /// The methods a documented path allows, empty when the path is not documented.
    static func methods(for path: String) -> Set<String> {
        let segments = path.split(separator: "/")
        var methods: Set<String> = []
        for operation in operations where operation.segments.count == segments.count {
            let matches = zip(operation.segments, segments).allSatisfy { template, segment in
                template == segment || (template.first == "{" && template.last == "}")
            }
            if matches { methods.formUnion(operation.methods) }
        }
        return methods
    }
}
