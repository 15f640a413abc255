import Foundation
import GRDB
import LLMTapCore

extension Store {
    /// A batch ready to write: values serialized, payloads compressed and messages
    /// hashed, so the Recorder can prepare the next batch while this one is written.
    struct PreparedBatch: Sendable {
        var calls: [PreparedCall]
        var count: Int { calls.count }
    }

    struct PreparedCall: Sendable {
        var id: String
        var values: [DatabaseValue]
        /// The messages `chat_input` and `output` are read from, when the row leaves them out.
        var textSources: [Hash16]
        /// `insertPayload`'s values; the request a template when `fragments` is not empty.
        var payload: [DatabaseValue]?
        /// The payload's part of the chain link: it depends on nothing the write assigns, so the
        /// preparing thread hashes it, not the writer.
        var payloadDigest: Data?
        var fragments: [PreparedFragment] = []
        var thread: Thread?
        var needsSession: Bool
        var keyFingerprint: String?
        var tags: [String: String]
        var chatInput: String?
        var output: String?
    }

    /// A piece of a request body stored once (`PayloadFragments`); compressed ahead when it is
    /// likely new, or in the write when a fragment thought stored was not.
    struct PreparedFragment: Sendable {
        var hash: Hash16
        var raw: ArraySlice<UInt8>
        var compressed: Data?
        /// The message it was compressed against, by hash (`fragments.message_id`).
        var message: Hash16?
    }

    /// A call's conversation: its context messages and its reply, normalized and hashed.
    struct Thread: Sendable {
        var messages: [HashedMessage]
        var reply: HashedMessage?
    }

    /// A message keyed by the hash of its normalized form, kept in the form first seen.
    /// Its text is written only when it is new (a call's context is mostly messages stored
    /// by the turns before it).
    struct HashedMessage: Sendable {
        var hash: Hash16
        var message: JSONValue
        /// Its canonical JSON compressed, when `prepare` thought it new (else the write compresses it if it is).
        var compressed: Data?

        init(_ message: JSONValue) {
            self.init(message, hash: Self.hash(message))
        }

        /// - Parameter hash: `hash(message)`, known already (`ContextMemo`).
        init(_ message: JSONValue, hash: Hash16) {
            self.hash = hash
            self.message = message
        }

        static func hash(_ message: JSONValue) -> Hash16 {
            Hash16(of: Conversation.normalizedCanonicalBytes(message))
        }

    }

    /// Serializes, compresses and hashes a batch, off the write transaction (the Recorder
    /// prepares the next batch while one is written).
    func prepare(_ batch: [CallRecord]) throws -> PreparedBatch {
        let bodies = try PayloadCodec.BodyCompressor()
        let pieces = try PayloadCodec.Compressor(dictionary: PayloadDictionary.currentPieces)
        var calls: [PreparedCall] = []
        calls.reserveCapacity(batch.count)
        // Fragments this batch compresses: calls of one session share most of their history, and
        // only the first of them in a batch needs it compressed (the write stores it once).
        var compressedHere = Set<Hash16>()
        var messagesCompressedHere = Set<Hash16>()
        for record in batch {
            let slices = record.noLog ? [] : PayloadFragments.slices(record.requestBody)
            let messages = record.context?.arrayValue ?? []
            // A no-log call's body is not kept for the next call to be compared with.
            let hashes = contextMemo.hashes(messages: messages, body: record.noLog ? [] : record.requestBody, fragments: slices)
            var thread: Thread?
            if !messages.isEmpty {
                thread = Thread(
                    messages: zip(messages, hashes.messages).map { HashedMessage($0, hash: $1) },
                    reply: Conversation.reply(output: record.output, toolCalls: record.toolCalls).map { HashedMessage($0) })
                // Messages likely new are compressed here, off the write (most of a context is known).
                func compressIfNew(_ message: inout HashedMessage) throws {
                    guard nodeCache.message(message.hash) == nil, messagesCompressedHere.insert(message.hash).inserted else { return }
                    message.compressed = try pieces.compress(message.message.canonicalBytes)
                }
                for index in thread!.messages.indices { try compressIfNew(&thread!.messages[index]) }
                if thread!.reply != nil { try compressIfNew(&thread!.reply!) }
            }
            // A fragment that is one of these messages is compressed against it (`PayloadFragments`).
            let threadHashes = Set(thread?.messages.map(\.hash) ?? [])
            var payload: [DatabaseValue]?
            var fragments: [PreparedFragment] = []
            if !record.noLog {
                var request = record.requestBody
                if !slices.isEmpty {
                    fragments = try zip(slices, hashes.fragments).map { slice, hash in
                        let raw = record.requestBody[slice]
                        var fragment = PreparedFragment(hash: hash, raw: raw, compressed: nil, message: nil)
                        guard !fragmentCache.contains(hash), compressedHere.insert(hash).inserted else { return fragment }
                        if let (message, normalized) = PayloadFragments.message(raw, among: threadHashes) {
                            fragment.message = message
                            fragment.compressed = try pieces.compress(Array(raw), against: normalized)
                        } else {
                            fragment.compressed = try pieces.compress(Array(raw))
                        }
                        return fragment
                    }
                    request = PayloadFragments.template(record.requestBody, slices: slices)
                }
                payload = [
                    record.id.databaseValue, "zlib".databaseValue, try bodies.compress(request).databaseValue,
                    record.requestBody.count.databaseValue, try bodies.compress(record.responseBody).databaseValue,
                    record.responseBody.count.databaseValue, record.responseContentEncoding.databaseValue,
                    (fragments.isEmpty ? 0 : PayloadFragments.currentFormat).databaseValue, .null,  // fragment_ids: given by the write
                ]
            }
            let row = Self.values(record, thread: thread)
            calls.append(
                PreparedCall(
                    id: record.id, values: row.values, textSources: row.textSources, payload: payload,
                    payloadDigest: payload.map { AuditChain.payloadDigest($0, fragments: fragments.map(\.hash)) },
                    fragments: fragments, thread: thread,
                    needsSession: record.sessionID == nil, keyFingerprint: record.keyFingerprint, tags: record.tags,
                    chatInput: record.chatInput, output: record.output))
        }
        return PreparedBatch(calls: calls)
    }

    /// Writes a prepared batch in one transaction: threads each call into its
    /// conversation, then inserts it with its payloads, tags and search text.
    /// A call already present (a spool replayed twice) is left as it is.
    /// - Returns: the sessions threading assigned, by call id.
    @discardableResult
    func write(_ batch: PreparedBatch) async throws -> [String: String] {
        do {
            return try await pool.write { db in try self.write(batch, db) }
        } catch {
            // Rolled back: the ids this write handed out are not in the database, and the next
            // write would give them to other rows. Forget them.
            messageKeys.invalidate()
            fragmentKeys.invalidate()
            nodeCache.removeAll()
            fragmentCache.removeAll()
            throw error
        }
    }

    private func write(_ batch: PreparedBatch, _ db: Database) throws -> [String: String] {
        let nodes = nodeCache
        let fragmentsStored = fragmentCache
        try messageKeys.sync(db)
        try fragmentKeys.sync(db)
        var assigned: [String: String] = [:]
        var head = try AuditChain.head(db)
        var sums = BatchSums()
        let insertCall = try db.cachedStatement(sql: Self.insertCall)
        let insertPayload = try db.cachedStatement(sql: Self.insertPayload)
        let insertTag = try db.cachedStatement(sql: "INSERT OR REPLACE INTO tags (call_id, key, value) VALUES (?, ?, ?)")
        let insertSearch = try db.cachedStatement(
            sql: "INSERT INTO calls_fts (rowid, chat_input, output) VALUES (?, ?, ?)")
        let touchFragment = try db.cachedStatement(
            sql: "UPDATE fragments SET last_rowid = max(last_rowid, ?) WHERE id = ?")
        let insertFragment = try db.cachedStatement(
            sql: "INSERT INTO fragments (hash, bytes, size, last_rowid, message_id) VALUES (?, ?, ?, ?, ?)")
        func store(_ fragment: PreparedFragment, at rowID: Int64) throws -> Int64 {
            // Its message was stored by this call's threading above, at the latest.
            let message = try fragment.message.flatMap { try nodes.message($0) ?? messageKeys.find($0, db: db) }
            let compressed =
                try (fragment.message == nil || message != nil ? fragment.compressed : nil)
                ?? PayloadCodec.compressPiece(Array(fragment.raw))
            try insertFragment.run([
                fragment.hash.data.databaseValue, compressed.databaseValue, fragment.raw.count.databaseValue,
                rowID.databaseValue, message.databaseValue,
            ])
            let id = db.lastInsertedRowID
            fragmentKeys.added(fragment.hash, id: id)
            return id
        }
        for call in batch.calls {
            var values = call.values
            if let thread = call.thread {
                let path = try Self.nodePath(thread, db: db, cache: nodes, keys: messageKeys)
                values[Self.Position.contextNode] = path.context.last!.databaseValue
                values[Self.Position.replyNode] = path.reply.databaseValue
                if call.needsSession {
                    let session = try Self.findSession(path: path.context, key: call.keyFingerprint, db: db) ?? call.id
                    assigned[call.id] = session
                    values[Self.Position.sessionID] = session.databaseValue
                    values[Self.Position.sessionSource] = "auto".databaseValue
                }
            }
            let link = AuditChain.link(
                previous: head, values: values,
                payloadDigest: call.payloadDigest,
                textSources: call.textSources)
            values[Self.Position.chainHash] = link.databaseValue
            try insertCall.run(values)
            guard db.changesCount > 0 else { continue }
            head = link
            sums.add(values)
            let rowID = db.lastInsertedRowID
            var fragmentIDs: [Int64] = []
            fragmentIDs.reserveCapacity(call.fragments.count)
            for fragment in call.fragments {
                // `last_rowid`: the newest call that uses it, give or take the cache's slack;
                // retention frees fragments no kept call uses.
                let cached = fragmentsStored.entry(fragment.hash)
                if let cached, rowID - cached.lastRowID < fragmentsStored.slack {
                    fragmentIDs.append(cached.id)
                    continue
                }
                var id = try cached?.id ?? fragmentKeys.find(fragment.hash, db: db)
                if let known = id {
                    try touchFragment.run([rowID.databaseValue, known.databaseValue])
                    if db.changesCount == 0 { id = nil }  // retention dropped it since
                }
                let stored = try id ?? store(fragment, at: rowID)
                fragmentsStored.stored(fragment.hash, id: stored, at: rowID)
                fragmentIDs.append(stored)
            }
            if var payload = call.payload {
                if !fragmentIDs.isEmpty { payload[8] = Data(PayloadFragments.encode(ids: fragmentIDs)).databaseValue }
                // The row is keyed by the call's rowid; the call's id and the encoding are
                // digested (above) but not stored again.
                payload[1] = rowID.databaseValue
                try insertPayload.run(payload.dropFirst())
            }
            for (key, value) in call.tags { try insertTag.run([call.id.databaseValue, key.databaseValue, value.databaseValue]) }
            if call.chatInput != nil || call.output != nil {
                try insertSearch.run([rowID.databaseValue, call.chatInput.databaseValue, call.output.databaseValue])
            }
        }
        try sums.write(db)
        // One key table's slice per write: the fragments' merge waits while the messages' runs.
        if try !messageKeys.mergeIfDue(db) { try fragmentKeys.mergeIfDue(db) }
        return assigned
    }

    /// Prepares and writes a batch (spool replays, `llmtap import`, tests); calls already present are left alone.
    @discardableResult
    public func insert(_ batch: [CallRecord]) async throws -> [String: String] {
        try await write(prepare(batch))
    }

    static let callColumns = [
        "id", "created_at", "session_id", "session_source", "provider", "endpoint", "api_format",
        "key_fingerprint", "client_address", "tags", "model", "parameters", "context", "chat_input",
        "is_stream", "usage_injected", "no_log", "http_status", "output", "outputs", "tool_calls",
        "finish_reason", "response_model", "error_type", "error_message", "outcome", "input_tokens",
        "output_tokens", "total_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens", "usage_source",
        "usage_repeated", "usage_checks", "cost_nano_usd", "pricing_version", "latency_s", "ttft_s", "itl_s",
        "itl_p95_s", "itl_max_s", "tokens_per_second", "server_metrics", "context_node", "reply_node",
        "requested_model", "chain_hash", "text_from_thread",
    ]

    /// Positions in `callColumns` of the columns read or set for every call written (the
    /// writer, `values`, `BatchSums`): found once, not by name per call.
    enum Position {
        static let createdAt = column("created_at")
        static let sessionID = column("session_id")
        static let sessionSource = column("session_source")
        static let provider = column("provider")
        static let key = column("key_fingerprint")
        static let model = column("model")
        static let chatInput = column("chat_input")
        static let output = column("output")
        static let responseModel = column("response_model")
        static let inputTokens = column("input_tokens")
        static let outputTokens = column("output_tokens")
        static let cost = column("cost_nano_usd")
        static let latency = column("latency_s")
        static let ttft = column("ttft_s")
        static let itl = column("itl_s")
        static let tokensPerSecond = column("tokens_per_second")
        static let contextNode = column("context_node")
        static let replyNode = column("reply_node")
        static let chainHash = column("chain_hash")
        static let textFromThread = column("text_from_thread")
    }

    static func column(_ name: String) -> Int { callColumns.firstIndex(of: name)! }

    static let insertCall =
        "INSERT OR IGNORE INTO calls (\(callColumns.joined(separator: ", "))) VALUES ("
        + Array(repeating: "?", count: callColumns.count).joined(separator: ", ") + ")"

    /// A payload row from a prepared payload's values after the first (`AuditChain.payloadColumns`
    /// order, then `fragment_ids`), the second replaced by the call's rowid.
    static let insertPayload = """
        INSERT OR IGNORE INTO payloads
        (call_rowid, request, request_size, response, response_size, response_content_encoding, request_format,
          fragment_ids)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        """

    /// The `calls` row. A message-list context is not stored here but as the path to
    /// `context_node` (each message once, in `messages`); other contexts (a prompt) are.
    /// `chat_input` and `output` are left out too when the call's messages give them back
    /// exactly (`text_from_thread`, `ThreadText`).
    /// - Returns: also the hashes of the messages the row's text is left to (`AuditChain.link`).
    static func values(_ r: CallRecord, thread: Thread?) -> (values: [DatabaseValue], textSources: [Hash16]) {
        var values = values(r, storingContext: thread == nil)
        guard let thread else { return (values, []) }
        var fromThread: Int64 = 0
        var sources: [Hash16] = []
        if let input = r.chatInput,
            let user = thread.messages.last(where: { ThreadText.isUser($0.message) }),
            ThreadText.text(of: user.message) == input
        {
            values[Position.chatInput] = .null
            fromThread |= ThreadText.chatInputBit
            sources.append(user.hash)
        }
        if let output = r.output, let reply = thread.reply, ThreadText.text(of: reply.message) == output {
            values[Position.output] = .null
            fromThread |= ThreadText.outputBit
            sources.append(reply.hash)
        }
        values[Position.textFromThread] = fromThread.databaseValue
        return (values, sources)
    }

    static func values(_ r: CallRecord, storingContext: Bool) -> [DatabaseValue] {
        // Built as DatabaseValue directly: an array of `any DatabaseValueConvertible` costs a
        // dynamic cast per value (measurable at thousands of calls per second).
        func text(_ value: String?) -> DatabaseValue { value?.databaseValue ?? .null }
        func integer(_ value: Int64?) -> DatabaseValue { value?.databaseValue ?? .null }
        func integer(_ value: Int?) -> DatabaseValue { value.map { Int64($0).databaseValue } ?? .null }
        func real(_ value: Double?) -> DatabaseValue { value?.databaseValue ?? .null }
        func flag(_ value: Bool) -> DatabaseValue { Int64(value ? 1 : 0).databaseValue }
        let u = r.usage
        return [
            text(r.id), real(r.createdAt), text(r.sessionID), text(r.sessionSource?.rawValue), text(r.provider),
            text(r.endpoint), text(r.apiFormat), text(r.keyFingerprint), text(r.clientAddress),
            text(JSONValue.object(r.tags.mapValues { .string($0) }).canonicalText), text(r.model),
            text(r.parameters?.canonicalText), text(storingContext ? r.context?.canonicalText : nil), text(r.chatInput),
            flag(r.isStream), flag(r.usageInjected), flag(r.noLog), integer(r.httpStatus), text(r.output),
            text(r.outputs.map { JSONValue.array($0.map { .string($0) }).canonicalText }), text(r.toolCalls?.canonicalText),
            text(r.finishReason), text(r.responseModel), text(r.errorType), text(r.errorMessage), text(r.outcome.rawValue),
            integer(u?.inputTokens), integer(u?.outputTokens), integer(u?.totalTokens), integer(u?.cachedInputTokens),
            integer(u?.cacheWriteInputTokens), integer(u?.reasoningTokens), text(u?.source.rawValue), flag(r.usageRepeated),
            integer(r.usageChecks.rawValue), integer(r.costNanoUSD),
            text(r.pricingVersion), real(r.latencyS), real(r.ttftS), real(r.itlS), real(r.itlP95S), real(r.itlMaxS),
            real(r.tokensPerSecond), text(r.serverMetrics?.canonicalText), .null, .null, text(r.requestedModel), .null,
            Int64(0).databaseValue,
        ]
    }

}
