import Foundation
import Hummingbird
import LLMTapCore
import LLMTapStore

/// A bad request to the query API: answered 4xx with `{"error":{"message","type"}}`.
struct APIError: Error {
    var status: HTTPResponse.Status
    var type: String
    var message: String

    static func badParameter(_ name: String, _ why: String) -> APIError {
        APIError(status: .badRequest, type: "invalid_parameter", message: "\(name): \(why)")
    }

    static func notFound(_ what: String) -> APIError {
        APIError(status: .notFound, type: "not_found", message: "\(what) not found")
    }
}

/// The query string of a query API request, read with validation.
struct QueryParameters {
    let values: [String: String]
    let all: [(String, String)]

    init(_ request: Request) {
        let params = request.uri.queryParameters
        var values: [String: String] = [:]
        var all: [(String, String)] = []
        for (key, value) in params {
            let k = String(key)
            let v = String(value)
            values[k] = v
            all.append((k, v))
        }
        self.values = values
        self.all = all
    }

    subscript(_ name: String) -> String? {
        guard let value = values[name], !value.isEmpty else { return nil }
        return value
    }

    func limit(default defaultValue: Int = 50) throws -> Int {
        guard let text = self["limit"] else { return defaultValue }
        guard let n = Int(text), n >= 1 else { throw APIError.badParameter("limit", "a whole number from 1 to \(Store.maximumPageSize)") }
        return min(n, Store.maximumPageSize)
    }

    /// `from`/`to`: Unix seconds, a date (`2026-11-22`, UTC) or an RFC 3339 time.
    func time(_ name: String) throws -> Double? {
        guard let text = self[name] else { return nil }
        if let seconds = Timestamps.parse(text) { return seconds }
        throw APIError.badParameter(name, "Unix seconds, a date (2026-11-22) or an RFC 3339 time")
    }

    func filter() throws -> CallFilter {
        // A typed parameter given empty (`to=`) is a mistake, not "no filter".
        for name in ["from", "to", "status", "outcome", "limit", "group_by", "series"] where values[name] == "" {
            throw APIError.badParameter(name, "empty; leave it out for no filter")
        }
        var filter = CallFilter()
        filter.from = try time("from")
        filter.to = try time("to")
        filter.model = self["model"]
        filter.provider = self["provider"]
        filter.text = self["q"]
        filter.sessionID = self["session_id"]
        filter.outcome = self["outcome"]
        filter.apiKey = self["api_key"]
        if let outcome = filter.outcome, !["ok", "upstream_error", "unreachable", "client_cancelled", "timeout"].contains(outcome) {
            throw APIError.badParameter("outcome", "one of ok, upstream_error, unreachable, client_cancelled, timeout")
        }
        if let status = self["status"] {
            guard let code = Int(status), (100...599).contains(code) else {
                throw APIError.badParameter("status", "an HTTP status code")
            }
            filter.status = code
        }
        for (key, value) in all where key == "check" {
            guard let check = UsageChecks(name: value) else {
                throw APIError.badParameter("check", UsageChecks.names.map(\.0).joined(separator: ", "))
            }
            filter.checks.insert(check)
        }
        for (key, value) in all where key == "tag" && !value.isEmpty {
            if let colon = value.firstIndex(of: ":") {
                filter.tags.append((String(value[..<colon]), String(value[value.index(after: colon)...])))
            } else {
                filter.tags.append((value, nil))
            }
        }
        for (name, value) in [("q", filter.text), ("model", filter.model)] where (value?.count ?? 0) > 1000 {
            throw APIError.badParameter(name, "at most 1000 characters")
        }
        return filter
    }
}
