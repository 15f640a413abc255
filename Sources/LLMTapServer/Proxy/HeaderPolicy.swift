import HTTPTypes
import NIOHTTP1

/// Which headers cross llmtap, in each direction (RFC 9110 §7.6.1).
enum HeaderPolicy {
    /// Hop-by-hop fields: they describe one connection, never forwarded.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

    /// Content codings llmtap can decode to parse a response; `Accept-Encoding` is narrowed to these.
    static let decodableCodings: Set<String> = ["gzip", "deflate", "identity"]

    /// The client's headers as sent upstream: minus hop-by-hop fields (and those the
    /// `Connection` header names), minus `Host` and `Content-Length` (set anew for the
    /// upstream), minus `Expect` (llmtap has the whole body before it calls the upstream),
    /// minus llmtap's own `X-Tap-*`; `Accept-Encoding` narrowed to what llmtap decodes.
    static func upstreamHeaders(from fields: HTTPFields) -> HTTPHeaders {
        let named = connectionNamed(fields)
        var out = HTTPHeaders()
        for field in fields {
            let name = field.name.canonicalName
            if hopByHop.contains(name) || named.contains(name) || name == "host" || name == "content-length"
                || name == "expect" || name.hasPrefix("x-tap-")
            {
                continue
            }
            if name == "accept-encoding" {
                if let narrowed = narrowAcceptEncoding(field.value) { out.add(name: field.name.rawName, value: narrowed) }
                continue
            }
            out.add(name: field.name.rawName, value: field.value)
        }
        return out
    }

    /// The upstream's response headers as sent to the client: minus hop-by-hop fields;
    /// minus `Content-Length` when llmtap changes the body (usage-chunk removal).
    static func clientHeaders(from headers: HTTPHeaders, bodyRewritten: Bool) -> HTTPFields {
        let named = Set(headers["connection"].flatMap { $0.split(separator: ",") }.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        })
        var out = HTTPFields()
        for (name, value) in headers {
            let lower = name.lowercased()
            if hopByHop.contains(lower) || named.contains(lower) { continue }
            if bodyRewritten && lower == "content-length" { continue }
            guard let fieldName = HTTPField.Name(name) else { continue }
            out.append(HTTPField(name: fieldName, value: value))
        }
        return out
    }

    /// `gzip, br;q=0.9, zstd` → `gzip`; `nil` when nothing decodable is left, so the upstream sends identity.
    static func narrowAcceptEncoding(_ value: String) -> String? {
        let kept = value.split(separator: ",").filter { item in
            let coding = item.split(separator: ";")[0].trimmingCharacters(in: .whitespaces).lowercased()
            return decodableCodings.contains(coding)
        }.map { $0.trimmingCharacters(in: .whitespaces) }
        return kept.isEmpty ? nil : kept.joined(separator: ", ")
    }

    private static func connectionNamed(_ fields: HTTPFields) -> Set<String> {
        Set(fields[values: .connection].flatMap { $0.split(separator: ",") }.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        })
    }
}

extension HTTPFields {
    /// The value of a header by name, case-insensitively.
    subscript(named name: String) -> String? {
        guard let fieldName = HTTPField.Name(name) else { return nil }
        return self[fieldName]
    }
}

extension HTTPFields {
    /// The first value of a field, for the few the hot path reads once per request. The
    /// name subscript joins every value of the name into a new string, a measurable part
    /// of a request's time on the event loop (perf, one call at a time).
    func first(_ name: HTTPField.Name) -> String? {
        for field in self where field.name == name { return field.value }
        return nil
    }
}
