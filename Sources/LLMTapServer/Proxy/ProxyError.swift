import Foundation
import Hummingbird
import LLMTapCore

/// The answers llmtap gives itself (everything else is the upstream's, byte for byte),
/// in OpenAI's error shape `{"error":{"message":…,"type":…}}`.
enum ProxyError: Error {
    case noRoute(path: String, providers: [String])
    case unknownProvider(name: String, providers: [String])
    case bodyTooLarge(limit: Int)
    case upstreamUnreachable(url: String, underlying: String)
    case upstreamTimeout(url: String)
    case badRequest(String)
    case unknownProxyKey

    var status: HTTPResponse.Status {
        switch self {
        case .noRoute, .unknownProvider: .notFound
        case .bodyTooLarge: .contentTooLarge
        case .upstreamUnreachable: .badGateway
        case .upstreamTimeout: .gatewayTimeout
        case .badRequest: .badRequest
        case .unknownProxyKey: .unauthorized
        }
    }

    var type: String {
        switch self {
        case .noRoute, .unknownProvider: "not_found"
        case .bodyTooLarge: "request_too_large"
        case .upstreamUnreachable: "upstream_unreachable"
        case .upstreamTimeout: "upstream_timeout"
        case .badRequest: "invalid_request"
        case .unknownProxyKey: "invalid_api_key"
        }
    }

    var message: String {
        switch self {
        case .noRoute(let path, let providers):
            "llmtap has no route for \(path): use /v1/... (the default upstream) or /{provider}/... with one of: "
                + providers.sorted().joined(separator: ", ")
        case .unknownProvider(let name, let providers):
            "llmtap has no provider named \(name); configured: " + providers.sorted().joined(separator: ", ")
        case .bodyTooLarge(let limit):
            "request body exceeds llmtap's limit of \(limit) bytes (--max-body-bytes)"
        case .upstreamUnreachable(let url, let underlying):
            "llmtap could not reach the upstream \(url): \(underlying)"
        case .upstreamTimeout(let url):
            "the upstream \(url) did not answer in time"
        case .badRequest(let message):
            message
        case .unknownProxyKey:
            "this llmtap needs one of its proxy keys (Authorization: Bearer <proxy key>); provider keys are not accepted"
        }
    }

    var body: ByteBuffer {
        let json = JSONValue.object([
            "error": .object(["message": .string(message), "type": .string(type)])
        ])
        return ByteBuffer(string: json.canonicalText)
    }

    var response: Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }
}
