import Foundation
import Hummingbird

/// The web dashboard: three hand-written files embedded in the binary
/// (`Resources/dashboard`), served on the API port. Every view has its own URL, and
/// the server answers each with the same page, which then asks the query API for the
/// data — so the pages carry no data and need no token; the API calls do.
enum Dashboard {
    /// The app's own paths (each answered with the page) and its assets.
    static let pages = ["/", "/sessions", "/sessions/{id}", "/calls/{id}", "/live"]

    struct Asset: Sendable {
        var contentType: String
        var bytes: ByteBuffer
    }

    static let index = load("index.html", "text/html; charset=utf-8")
    static let assets: [String: Asset] = [
        "app.js": load("app.js", "text/javascript; charset=utf-8"),
        "app.css": load("app.css", "text/css; charset=utf-8"),
    ]

    private static func load(_ name: String, _ contentType: String) -> Asset {
        let url = Bundle.module.url(forResource: "dashboard", withExtension: nil)?.appendingPathComponent(name)
        let data = url.flatMap { try? Data(contentsOf: $0) } ?? Data("dashboard file \(name) missing from the build".utf8)
        return Asset(contentType: contentType, bytes: ByteBuffer(bytes: data))
    }

    /// Paths that serve the app itself, not data: open without the API token.
    static func isPublic(_ path: String) -> Bool {
        path == "/" || path == "/sessions" || path == "/live" || path.hasPrefix("/sessions/") || path.hasPrefix("/calls/")
            || path.hasPrefix("/assets/")
    }

    static func register(on router: Router<BasicRequestContext>) {
        for page in pages {
            router.get(RouterPath(page.replacingOccurrences(of: "{id}", with: ":id"))) { _, _ in response(index) }
        }
        router.get("/assets/:name") { _, context -> Response in
            guard let asset = assets[try context.parameters.require("name")] else {
                throw HTTPError(.notFound)
            }
            return response(asset)
        }
    }

    private static func response(_ asset: Asset) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = asset.contentType
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: asset.bytes))
    }
}
