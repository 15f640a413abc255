import Foundation
import Hummingbird
import LLMTapCore
import LLMTapStore

/// The query API listener. This first cut serves `/healthz` (recorder and spool
/// health); the session, request and cost endpoints of SPEC §5 build on it.
func buildQueryRouter(recorder: Recorder, apiToken: String?) -> Router<BasicRequestContext> {
    let router = Router()
    router.get("healthz") { _, _ -> Response in
        let stats = recorder.stats
        let healthy = stats.databaseHealthy
        let json = JSONValue.object([
            "status": .string(healthy ? "ok" : "degraded"),
            "database": .string(healthy ? "ok" : "failing"),
            "recorder": .object([
                "queued": .int(Int64(stats.queued)), "written": .int(Int64(stats.written)),
                "spooled": .int(Int64(stats.spooled)), "replayed": .int(Int64(stats.replayed)),
                "dropped": .int(Int64(stats.dropped)),
            ]),
        ])
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(
            status: healthy ? .ok : .serviceUnavailable, headers: headers,
            body: .init(byteBuffer: ByteBuffer(string: json.canonicalText)))
    }
    return router
}
