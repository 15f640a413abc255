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
}
