import Foundation
import Hummingbird
import LLMTapCore
import LLMTapStore
import NIOCore
import ServiceLifecycle

/// The query API (SPEC §5): sessions, requests, raw bytes, cost, stats, live events,
/// Prometheus metrics, health and the OpenAPI document. Every answer is JSON; errors are
/// `{"error":{"message","type"}}` with a 4xx status for bad parameters.
func buildQueryRouter(recorder: Recorder, metrics: LLMTapMetrics, apiToken: String?, corsOrigins: [String] = [])
    -> Router<BasicRequestContext>
{
    let store = recorder.store
    let router = Router()
    // CORS is off (no Access-Control-* header, so browsers keep other sites' pages out) unless
    // origins are configured; the preflight is answered before the token check.
    if !corsOrigins.isEmpty { router.middlewares.add(AllowedOrigins(origins: corsOrigins)) }
    router.middlewares.add(APIErrorMiddleware())
    if let apiToken { router.middlewares.add(BearerTokenMiddleware(token: apiToken)) }

    Dashboard.register(on: router)

    router.get("healthz") { _, _ -> Response in
        let stats = recorder.stats
        let healthy = stats.databaseHealthy
        return json(
            .object([
                "status": .string(healthy ? "ok" : "degraded"),
                "database": .string(healthy ? "ok" : "failing"),
                "recorder": .object([
                    "queued": .int(Int64(stats.queued)), "written": .int(Int64(stats.written)),
                    "spooled": .int(Int64(stats.spooled)), "replayed": .int(Int64(stats.replayed)),
                    "dropped": .int(Int64(stats.dropped)), "failed_writes": .int(Int64(stats.failedWrites)),
                    "reopened": .int(Int64(stats.reopened)),
                    "spool_pending": .int(Int64(recorder.spool.count)),
                ]),
            ]), status: healthy ? .ok : .serviceUnavailable)
    }

    router.get("metrics") { _, _ -> Response in
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: metrics.exposition())))
    }

    router.get("openapi.json") { _, _ -> Response in
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.text)))
    }

    router.get("api/sessions") { request, _ -> Response in
        let query = QueryParameters(request)
        let page = try store.sessions(filter: try query.filter(), limit: try query.limit(), cursor: query["cursor"])
        return json(APIJSON.sessions(page))
    }

    router.get("api/sessions/:id") { _, context -> Response in
        let id = try context.parameters.require("id")
        guard let (summary, calls, contexts) = try store.sessionWithContextText(id: id) else {
            throw APIError.notFound("session \(id)")
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        let body = APIJSON.session(summary, calls: calls, contexts: contexts)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    router.get("api/requests") { request, _ -> Response in
        let query = QueryParameters(request)
        let page = try store.requests(filter: try query.filter(), limit: try query.limit(), cursor: query["cursor"])
        return json(
            .object([
                "requests": .array(page.items.map { APIJSON.call($0, detail: false) }),
                "next_cursor": APIJSON.string(page.nextCursor),
            ]))
    }

    router.get("api/requests/:id") { _, context -> Response in
        let id = try context.parameters.require("id")
        guard let call = try store.call(id: id) else { throw APIError.notFound("request \(id)") }
        return json(APIJSON.call(call, detail: true))
    }

    router.get("api/requests/:id/raw") { _, context -> Response in
        let id = try context.parameters.require("id")
        guard let call = try store.call(id: id) else { throw APIError.notFound("request \(id)") }
        return json(
            .object([
                "id": .string(call.id),
                "request_base64": .string(Data(call.requestBody).base64EncodedString()),
                "request_size": .int(Int64(call.requestBody.count)),
                "response_base64": .string(Data(call.responseBody).base64EncodedString()),
                "response_size": .int(Int64(call.responseBody.count)),
                "response_content_encoding": APIJSON.string(call.responseContentEncoding),
                "no_log": .bool(call.noLog),
            ]))
    }

    router.get("api/requests/:id/raw/:part") { _, context -> Response in
        let id = try context.parameters.require("id")
        let part = try context.parameters.require("part")
        guard part == "request" || part == "response" else { throw APIError.notFound("raw part \(part)") }
        guard let call = try store.call(id: id) else { throw APIError.notFound("request \(id)") }
        var headers = HTTPFields()
        headers[.contentType] = "application/octet-stream"
        if part == "response", let encoding = call.responseContentEncoding { headers[.contentEncoding] = encoding }
        let bytes = part == "request" ? call.requestBody : call.responseBody
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    router.get("api/cost") { request, _ -> Response in
        let query = QueryParameters(request)
        let groupText = query["group_by"] ?? "model"
        guard let grouping = CostGrouping(groupText) else {
            throw APIError.badParameter("group_by", "model, provider, day, hour, session, api_key or tag:<key>")
        }
        let filter = try query.filter()
        var report = try store.cost(groupBy: grouping, filter: filter)
        if let seriesText = query["series"] {
            let dimensions = "model, provider, day, hour or api_key"
            guard let series = CostGrouping(seriesText) else { throw APIError.badParameter("series", dimensions) }
            do {
                report.groups = try store.costSeries(groupBy: grouping, series: series, filter: filter)
            } catch QueryError.unsupportedSeries {
                throw APIError.badParameter("series", "with group_by and series each one of \(dimensions)")
            }
        }
        return json(APIJSON.cost(report, groupBy: groupText))
    }

    router.get("api/stats") { request, _ -> Response in
        json(APIJSON.stats(try store.stats(filter: try QueryParameters(request).filter())))
    }

    router.get("api/events") { _, _ -> Response in
        let calls = recorder.feed.subscribe()
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(
            status: .ok, headers: headers,
            body: .init { writer in
                try await writer.write(ByteBuffer(string: ": llmtap events\n\n"))
                // An event stream never ends by itself: it ends when llmtap shuts down.
                try await withGracefulShutdownHandler {
                    for await call in calls {
                        let data = APIJSON.call(call, detail: false).canonicalText
                        try await writer.write(ByteBuffer(string: "id: \(call.id)\nevent: call\ndata: \(data)\n\n"))
                    }
                } onGracefulShutdown: {
                    recorder.feed.finishAll()
                }
                try await writer.finish(nil)
            })
    }
    return router
}

func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: value.canonicalBytes)))
}

func errorResponse(_ status: HTTPResponse.Status, type: String, message: String) -> Response {
    json(.object(["error": .object(["message": .string(message), "type": .string(type)])]), status: status)
}

/// Maps every failure to the JSON error envelope: `APIError` as it says, Hummingbird's
/// own errors (404 for an unknown path) with their status, anything else as 500.
struct APIErrorMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return errorResponse(error.status, type: error.type, message: error.message)
        } catch QueryError.badCursor {
            return errorResponse(.badRequest, type: "invalid_parameter", message: "cursor: not a cursor this API gave out")
        } catch let error as HTTPError {
            if error.status == .notFound {
                let allowed = OpenAPIDocument.methods(for: request.uri.path)
                if !allowed.isEmpty, !allowed.contains(request.method.rawValue) {
                    var response = errorResponse(
                        .methodNotAllowed, type: "method_not_allowed",
                        message: "\(request.method.rawValue) is not allowed on \(request.uri.path)")
                    response.headers[.allow] = allowed.sorted().joined(separator: ", ")
                    return response
                }
                return errorResponse(.notFound, type: "not_found", message: "no such endpoint: \(request.uri.path)")
            }
            return errorResponse(error.status, type: "invalid_request", message: error.body ?? "\(error.status)")
        } catch {
            context.logger.error("query failed", metadata: ["llmtap.error": "\(error)"])
            return errorResponse(.internalServerError, type: "internal_error", message: "the query failed: \(error)")
        }
    }
}

/// `--api-token`: every endpoint but `/healthz` and the dashboard's pages needs `Authorization: Bearer <token>`.
struct BearerTokenMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if request.uri.path == "/healthz" || Dashboard.isPublic(request.uri.path) { return try await next(request, context) }
        let given = request.headers[.authorization] ?? ""
        guard Self.constantTimeEqual(given, "Bearer " + token) else {
            var response = errorResponse(.unauthorized, type: "unauthorized", message: "this API needs Authorization: Bearer <token>")
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        return try await next(request, context)
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }
}

/// `--cors-origin`: cross-origin requests from the listed origins (or `*`) are allowed;
/// Hummingbird's `CORSMiddleware` takes one origin, or echoes any, so the list is checked here.
struct AllowedOrigins: RouterMiddleware {
    typealias Context = BasicRequestContext
    let origins: [String]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard let origin = request.headers[.origin], origins.contains("*") || origins.contains(origin) else {
            return try await next(request, context)
        }
        var response: Response
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            response = Response(status: .noContent)
            response.headers[.accessControlAllowMethods] = "GET, POST, OPTIONS"
            response.headers[.accessControlAllowHeaders] = "Authorization, Content-Type"
            response.headers[.accessControlMaxAge] = "600"
        } else {
            response = try await next(request, context)
        }
        response.headers[.accessControlAllowOrigin] = origins.contains("*") ? "*" : origin
        response.headers[.vary] = "Origin"
        return response
    }
}
