import Foundation
import GRDB

/// The database's migrations: append-only, plain SQL, never changed once released
/// (GRDB `Migrations.md`). `schema.sql` at the repository root is what they produce;
/// `SchemaTests` keeps the two equal.
enum Migrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            for statement in v1 { try db.execute(sql: statement) }
        }
        migrator.registerMigration("v2-model-aliases") { db in
            try db.execute(
                sql: "ALTER TABLE calls ADD COLUMN requested_model TEXT /* the model the client named, when an alias rewrote it */")
        }
        migrator.registerMigration("v3-sessions-and-hourly-cost") { db in
            for statement in v3 { try db.execute(sql: statement) }
        }
        migrator.registerMigration("v4-audit-chain") { db in
            try db.execute(
                sql: "ALTER TABLE calls ADD COLUMN chain_hash BLOB /* SHA-256 link of the audit chain (llmtap verify) */")
            try db.execute(
                sql: "ALTER TABLE payloads ADD COLUMN digest BLOB /* set when payload retention dropped the bodies: the chain's record of them */")
            try db.execute(
                sql: """
                    CREATE TABLE chain_checkpoints (
                      id INTEGER PRIMARY KEY,
                      last_rowid INTEGER NOT NULL,               -- retention deleted every call up to this rowid
                      chain_hash BLOB NOT NULL,                  -- the last deleted call's link: the next call links to it
                      created_at REAL NOT NULL,
                      deleted INTEGER NOT NULL,                  -- calls deleted by this retention step
                      signature BLOB NOT NULL                    -- HMAC-SHA256 of the above with the database's secret key
                    )
                    """)
        }
        migrator.registerMigration("v5-batch-sums") { db in
            // The writer now adds each batch's sums itself (`BatchSums`); deletes and reprices keep their triggers.
            try db.execute(sql: "DROP TRIGGER calls_hourly_insert")
            try db.execute(sql: "DROP TRIGGER calls_session_insert")
        }
        migrator.registerMigration("v6-request-fragments") { db in
            // Request bodies as templates over shared fragments (PayloadFragments); older rows stay whole.
            try db.execute(
                sql: """
                    CREATE TABLE fragments (
                      hash BLOB PRIMARY KEY NOT NULL,   -- first 16 bytes of SHA-256 of the fragment's exact bytes
                      bytes BLOB NOT NULL,              -- those bytes, compressed like payloads
                      size INTEGER NOT NULL CHECK (size >= 0),
                      last_rowid INTEGER NOT NULL       -- the newest call using it; retention drops the unused
                    ) WITHOUT ROWID
                    """)
            // Payloads move to a rowid table. In the first schema's WITHOUT ROWID table a row of more
            // than ~1 KB (most payloads) spilled into overflow pages, leaving most of each page empty:
            // ~1.8 KB of every call's disk space was padding. Rows now fit in their leaf pages.
            try db.execute(
                sql: """
                    CREATE TABLE payloads_v6 (
                      call_id TEXT NOT NULL UNIQUE REFERENCES calls (id) ON DELETE CASCADE,
                      encoding TEXT NOT NULL CHECK (encoding IN ('zlib')),
                      request BLOB NOT NULL,             -- the request body as received, compressed (or its template)
                      request_size INTEGER NOT NULL CHECK (request_size >= 0),
                      response BLOB NOT NULL,            -- the response bytes as received (a stream as streamed), compressed
                      response_size INTEGER NOT NULL CHECK (response_size >= 0),
                      response_content_encoding TEXT,    -- the upstream's Content-Encoding, if the bytes are still encoded
                      digest BLOB,                       -- set when payload retention dropped the bodies: the chain's record of them
                      request_format INTEGER NOT NULL DEFAULT 0  -- 0: the request as received; 1: a template over fragments
                    )
                    """)
            try db.execute(
                sql: """
                    INSERT INTO payloads_v6 (call_id, encoding, request, request_size, response, response_size,
                      response_content_encoding, digest)
                    SELECT call_id, encoding, request, request_size, response, response_size, response_content_encoding, digest
                    FROM payloads
                    """)
            try db.execute(sql: "DROP TABLE payloads")
            try db.execute(sql: "ALTER TABLE payloads_v6 RENAME TO payloads")
        }
        migrator.registerMigration("v7-stats-sketches") { db in
            // `/api/stats` from hourly quantile sketches (`Sketch`, `StatsSketches`) instead of every call.
            try db.execute(
                sql: """
                    CREATE TABLE stats_hourly (
                      hour INTEGER NOT NULL,            -- Unix seconds, a multiple of 3600
                      provider TEXT NOT NULL,
                      model TEXT NOT NULL,              -- the response's model, else the request's, else ''
                      key_fingerprint TEXT NOT NULL,
                      latency BLOB NOT NULL,            -- quantile sketch of latency_s (one count per call)
                      ttft BLOB NOT NULL,               -- of ttft_s
                      itl BLOB NOT NULL,                -- of itl_s
                      tps BLOB NOT NULL,                -- of tokens_per_second
                      PRIMARY KEY (hour, provider, model, key_fingerprint)
                    ) WITHOUT ROWID
                    """)
            try StatsSketches.backfill(db)
        }
        migrator.registerMigration("v8-compressed-messages") { db in
            // Each distinct message's text compressed like payloads (its canonical JSON was stored
            // as text: ~20 % of a 20-turn session's bytes on disk).
            try db.execute(
                sql: """
                    CREATE TABLE messages_v8 (
                      id INTEGER PRIMARY KEY,
                      hash BLOB NOT NULL UNIQUE,        -- first 16 bytes of SHA-256 of the normalized message's canonical JSON
                      message BLOB NOT NULL             -- the message as first seen: canonical JSON, compressed like payloads
                    )
                    """)
            let compressor = try PayloadCodec.Compressor(dictionary: PayloadDictionary.currentPieces)
            let insert = try db.makeStatement(sql: "INSERT INTO messages_v8 (id, hash, message) VALUES (?, ?, ?)")
            let rows = try Row.fetchCursor(db, sql: "SELECT id, hash, message FROM messages ORDER BY id")
            while let row = try rows.next() {
                let text: String = row["message"]
                try insert.execute(arguments: [row["id"] as Int64, row["hash"] as Data, try compressor.compress(Array(text.utf8))])
            }
            try db.execute(sql: "DROP TABLE messages")
            try db.execute(sql: "ALTER TABLE messages_v8 RENAME TO messages")
        }
        migrator.registerMigration("v9-fragment-ids") { db in
            // Templates name fragments by row id (format 2, `PayloadFragments`): ~400 of a
            // 20-turn session call's ~480 template bytes were 16-byte hashes. Format-1 rows still
            // find theirs by hash.
            try db.execute(
                sql: """
                    CREATE TABLE fragments_v9 (
                      id INTEGER PRIMARY KEY,
                      hash BLOB NOT NULL UNIQUE,        -- first 16 bytes of SHA-256 of the fragment's exact bytes
                      bytes BLOB NOT NULL,              -- those bytes, compressed like payloads
                      size INTEGER NOT NULL CHECK (size >= 0),
                      last_rowid INTEGER NOT NULL       -- the newest call using it; retention drops the unused
                    )
                    """)
            try db.execute(
                sql: "INSERT INTO fragments_v9 (hash, bytes, size, last_rowid) SELECT hash, bytes, size, last_rowid FROM fragments")
            try db.execute(sql: "DROP TABLE fragments")
            try db.execute(sql: "ALTER TABLE fragments_v9 RENAME TO fragments")
            try db.execute(
                sql: "ALTER TABLE payloads ADD COLUMN fragment_ids BLOB /* format 2: the template's fragments, varint id deltas */")
        }
        migrator.registerMigration("v10-text-once") { db in
            // A threaded call's chat_input and output are taken from its messages when they give
            // them back exactly (`ThreadText`): the row no longer holds a third copy of the text.
            try db.execute(
                sql: """
                    ALTER TABLE calls ADD COLUMN text_from_thread INTEGER NOT NULL DEFAULT 0 \
                    /* bits: 1 chat_input, 2 output are the text of the call's last user message, of its reply */
                    """)
            // The search index keeps no copy of its own and reads none from `calls` (where the text may
            // be absent now): contentless, rebuilt from the calls it indexed.
            try db.execute(sql: "DROP TABLE calls_fts")
            try db.execute(sql: "CREATE VIRTUAL TABLE calls_fts USING fts5 (chat_input, output, content = '')")
            try db.execute(
                sql: """
                    INSERT INTO calls_fts (rowid, chat_input, output)
                    SELECT rowid, chat_input, output FROM calls WHERE chat_input IS NOT NULL OR output IS NOT NULL
                    """)
        }
        migrator.registerMigration("v11-fragments-against-messages") { db in
            // A fragment that is a chat message is compressed against that message's normalized
            // JSON (a zlib preset dictionary): its text is already in `messages` (PayloadFragments).
            try db.execute(
                sql: "ALTER TABLE fragments ADD COLUMN message_id INTEGER /* compressed against this message's normalized JSON */")
        }
        migrator.registerMigration("v12-search-terms-only") { db in
            // The search index keeps which calls hold a term, not where: `q` matches every word
            // (a word that punctuation splits is matched as its parts, `CallFilter.ftsQuery`), never a
            // phrase, so term positions were ~80 % of its bytes, and per-column sizes feed
            // ranking llmtap does not do. Rebuilt from the text each call indexed.
            try db.execute(sql: "DROP TABLE calls_fts")
            try db.execute(sql: "CREATE VIRTUAL TABLE calls_fts USING fts5 (\(CallFilter.searchColumns))")
            let insert = try db.makeStatement(sql: "INSERT INTO calls_fts (rowid, chat_input, output) VALUES (?, ?, ?)")
            let reader = ContextReader()
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT rowid, chat_input, output, text_from_thread, context_node, reply_node FROM calls
                    WHERE chat_input IS NOT NULL OR output IS NOT NULL OR text_from_thread != 0 ORDER BY rowid
                    """)
            while let row = try rows.next() {
                let (input, output) = try ThreadText.texts(of: row, reader: reader, db: db)
                if input != nil || output != nil { try insert.execute(arguments: [row["rowid"] as Int64, input, output]) }
            }
        }
        migrator.registerMigration("v13-payloads-by-rowid") { db in
            // A payload row is found by its call's rowid (the same key `calls_fts` uses) rather
            // than by a copy of the call's 36-character id with a unique index of its own; the
            // `encoding` column, always 'zlib', is gone (the audit chain still digests both, read
            // from the call: `AuditChain.payloadColumns`).
            try db.execute(
                sql: """
                    CREATE TABLE payloads_v13 (
                      call_rowid INTEGER PRIMARY KEY,    -- the call's rowid in calls; deleted with it (trigger)
                      request BLOB NOT NULL,             -- the request body as received, compressed (or its template)
                      request_size INTEGER NOT NULL CHECK (request_size >= 0),
                      response BLOB NOT NULL,            -- the response bytes as received (a stream as streamed), compressed
                      response_size INTEGER NOT NULL CHECK (response_size >= 0),
                      response_content_encoding TEXT,    -- the upstream's Content-Encoding, if the bytes are still encoded
                      digest BLOB,                       -- set when payload retention dropped the bodies: the chain's record of them
                      request_format INTEGER NOT NULL DEFAULT 0,  -- 0: the request as received; 1 - 3: a template over fragments
                      fragment_ids BLOB                  -- formats 2, 3: the template's fragments as varints (PayloadFragments)
                    )
                    """)
            try db.execute(
                sql: """
                    INSERT INTO payloads_v13
                    SELECT c.rowid, p.request, p.request_size, p.response, p.response_size, p.response_content_encoding,
                      p.digest, p.request_format, p.fragment_ids
                    FROM payloads p JOIN calls c ON c.id = p.call_id ORDER BY c.rowid
                    """)
            try db.execute(sql: "DROP TABLE payloads")
            try db.execute(sql: "ALTER TABLE payloads_v13 RENAME TO payloads")
            try db.execute(
                sql: "CREATE TRIGGER calls_payload_delete AFTER DELETE ON calls BEGIN DELETE FROM payloads WHERE call_rowid = old.rowid; END")
        }
        migrator.registerMigration("v14-content-keys") { db in
            // Messages and fragments are found by hash through `message_keys` / `fragment_keys`,
            // filled in hash order by the writer tens of thousands at a time, and through the
            // writer's memory for newer rows (`ContentKeys`), instead of a UNIQUE index that took
            // every new row at a random page. The tables are rebuilt without that index.
            try db.execute(
                sql: """
                    CREATE TABLE messages_v14 (
                      id INTEGER PRIMARY KEY,
                      hash BLOB NOT NULL,               -- first 16 bytes of SHA-256 of the normalized message's canonical JSON
                      message BLOB NOT NULL             -- the message as first seen: canonical JSON, compressed like payloads
                    )
                    """)
            try db.execute(sql: "INSERT INTO messages_v14 (id, hash, message) SELECT id, hash, message FROM messages ORDER BY id")
            try db.execute(sql: "DROP TABLE messages")
            try db.execute(sql: "ALTER TABLE messages_v14 RENAME TO messages")
            try db.execute(
                sql: """
                    CREATE TABLE fragments_v14 (
                      id INTEGER PRIMARY KEY,
                      hash BLOB NOT NULL,               -- first 16 bytes of SHA-256 of the fragment's exact bytes
                      bytes BLOB NOT NULL,              -- those bytes, compressed like payloads
                      size INTEGER NOT NULL CHECK (size >= 0),
                      last_rowid INTEGER NOT NULL,      -- the newest call using it; retention drops the unused
                      message_id INTEGER                -- compressed against this message's normalized JSON
                    )
                    """)
            try db.execute(
                sql: """
                    INSERT INTO fragments_v14 (id, hash, bytes, size, last_rowid, message_id)
                    SELECT id, hash, bytes, size, last_rowid, message_id FROM fragments ORDER BY id
                    """)
            try db.execute(sql: "DROP TABLE fragments")
            try db.execute(sql: "ALTER TABLE fragments_v14 RENAME TO fragments")
            for (table, keys) in [("messages", "message_keys"), ("fragments", "fragment_keys")] {
                try db.execute(
                    sql: """
                        CREATE TABLE \(keys) (
                          hash BLOB PRIMARY KEY NOT NULL,   -- a row's hash, for rows up to content_keys.merged_through
                          id INTEGER NOT NULL               -- its id in \(table)
                        ) WITHOUT ROWID
                        """)
                try db.execute(sql: "INSERT OR IGNORE INTO \(keys) (hash, id) SELECT hash, id FROM \(table) ORDER BY hash")
            }
            try db.execute(
                sql: """
                    CREATE TABLE content_keys (
                      name TEXT PRIMARY KEY NOT NULL,   -- messages, fragments
                      merged_through INTEGER NOT NULL   -- rows up to this id have their key in message_keys / fragment_keys
                    ) WITHOUT ROWID
                    """)
            try db.execute(
                sql: """
                    INSERT INTO content_keys (name, merged_through) VALUES
                      ('messages', (SELECT coalesce(max(id), 0) FROM messages)),
                      ('fragments', (SELECT coalesce(max(id), 0) FROM fragments))
                    """)
        }
        migrator.registerMigration("v15-checks-without-lists") { db in
            // `x IN ('a', 'b', 'c')` in a CHECK constraint has SQLite build a temporary B-tree of
            // the list each time an INSERT statement runs (it compares directly only for lists of
            // one or two), so every `calls` row built two, for `session_source` and `outcome`:
            // ~4 µs of the writer's ~56 a call. The same constraints as comparisons; the table
            // rebuilt with its rowids (payloads and the search index are keyed by them), then its
            // indexes and triggers made again from their own SQL.
            let indexesAndTriggers = try String.fetchAll(
                db,
                sql: """
                    SELECT sql FROM sqlite_schema
                    WHERE tbl_name = 'calls' AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY rowid
                    """)
            try db.execute(
                sql: """
                    CREATE TABLE calls_v15 (
                      -- identity
                      id TEXT PRIMARY KEY NOT NULL,                 -- UUIDv7: sorts by creation time
                      created_at REAL NOT NULL,                     -- Unix seconds, request received
                      session_id TEXT,
                      session_source TEXT CHECK (session_source = 'header' OR session_source = 'body' OR session_source = 'auto'),
                      provider TEXT NOT NULL,
                      endpoint TEXT NOT NULL,                       -- upstream path, e.g. /v1/chat/completions
                      api_format TEXT NOT NULL,                     -- openai.chat, generic, ...
                      key_fingerprint TEXT,                         -- keyed hash of the provider key, never the key
                      client_address TEXT,
                      tags TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(tags)),
                      -- request
                      model TEXT,
                      parameters TEXT CHECK (parameters IS NULL OR json_valid(parameters)),
                      context TEXT CHECK (context IS NULL OR json_valid(context)),
                      chat_input TEXT,
                      is_stream INTEGER NOT NULL CHECK (is_stream IN (0, 1)),
                      usage_injected INTEGER NOT NULL DEFAULT 0 CHECK (usage_injected IN (0, 1)),
                      no_log INTEGER NOT NULL DEFAULT 0 CHECK (no_log IN (0, 1)),
                      -- response
                      http_status INTEGER,
                      output TEXT,
                      outputs TEXT CHECK (outputs IS NULL OR json_valid(outputs)),   -- every choice's text when n > 1
                      tool_calls TEXT CHECK (tool_calls IS NULL OR json_valid(tool_calls)),
                      finish_reason TEXT,
                      response_model TEXT,
                      error_type TEXT,
                      error_message TEXT,
                      outcome TEXT NOT NULL CHECK (
                        outcome = 'ok' OR outcome = 'upstream_error' OR outcome = 'unreachable' OR outcome = 'client_cancelled'
                        OR outcome = 'timeout'),
                      -- metrics
                      input_tokens INTEGER CHECK (input_tokens >= 0),
                      output_tokens INTEGER CHECK (output_tokens >= 0),
                      total_tokens INTEGER CHECK (total_tokens >= 0),
                      cached_tokens INTEGER CHECK (cached_tokens >= 0),
                      cache_write_tokens INTEGER CHECK (cache_write_tokens >= 0),
                      reasoning_tokens INTEGER CHECK (reasoning_tokens >= 0),
                      usage_source TEXT CHECK (usage_source IN ('upstream', 'estimated')),
                      usage_repeated INTEGER NOT NULL DEFAULT 0 CHECK (usage_repeated IN (0, 1)),
                      usage_checks INTEGER NOT NULL DEFAULT 0,      -- bits: 1 usage missing, 2 estimated, 4 repeated, 8 zero output tokens, 16 cost unknown
                      cost_nano_usd INTEGER,                        -- NULL = unknown (unpriced model or no usage), never a silent 0
                      pricing_version TEXT,
                      latency_s REAL NOT NULL CHECK (latency_s >= 0),
                      ttft_s REAL,
                      itl_s REAL,
                      itl_p95_s REAL,
                      itl_max_s REAL,
                      tokens_per_second REAL,
                      server_metrics TEXT CHECK (server_metrics IS NULL OR json_valid(server_metrics)),  -- the provider's own clocks (Ollama)
                      -- conversation threading: the node of the context's last message, and of this call's reply
                      context_node INTEGER REFERENCES nodes (id),
                      reply_node INTEGER REFERENCES nodes (id),
                      requested_model TEXT,                         -- the model the client named, when an alias rewrote it
                      chain_hash BLOB,                              -- SHA-256 link of the audit chain (llmtap verify)
                      text_from_thread INTEGER NOT NULL DEFAULT 0   -- bits: 1 chat_input, 2 output are the text of the call's last user message, of its reply
                    )
                    """)
            let columns = """
                id, created_at, session_id, session_source, provider, endpoint, api_format, key_fingerprint, client_address, tags, model,
                parameters, context, chat_input, is_stream, usage_injected, no_log, http_status, output, outputs, tool_calls,
                finish_reason, response_model, error_type, error_message, outcome, input_tokens, output_tokens, total_tokens,
                cached_tokens, cache_write_tokens, reasoning_tokens, usage_source, usage_repeated, usage_checks, cost_nano_usd,
                pricing_version, latency_s, ttft_s, itl_s, itl_p95_s, itl_max_s, tokens_per_second, server_metrics, context_node,
                reply_node, requested_model, chain_hash, text_from_thread
                """
            try db.execute(sql: "INSERT INTO calls_v15 (rowid, \(columns)) SELECT rowid, \(columns) FROM calls ORDER BY rowid")
            try db.execute(sql: "DROP TABLE calls")
            try db.execute(sql: "ALTER TABLE calls_v15 RENAME TO calls")
            for sql in indexesAndTriggers { try db.execute(sql: sql) }
        }
        return migrator
    }

    /// `calls` row `X`'s hour and rollup key, and whether it is in the unpriced list.
    private static func hour(_ x: String) -> String { "CAST(\(x).created_at / 3600 AS INTEGER) * 3600" }
    private static func rollupKey(_ x: String) -> String {
        "hour = \(hour(x)) AND provider = \(x).provider AND model = coalesce(\(x).response_model, \(x).model, '') "
            + "AND key_fingerprint = coalesce(\(x).key_fingerprint, '')"
    }
    private static func listed(_ x: String) -> String {
        "(\(x).cost_nano_usd IS NULL AND coalesce(\(x).response_model, \(x).model) IS NOT NULL AND \(x).input_tokens IS NOT NULL)"
    }

    /// Per-session and per-hour sums kept by triggers in the transaction that writes,
    /// deletes or reprices a call, so listing sessions and summing cost never scan every
    /// call. Only a call's cost is ever updated in place (`reprice`).
    static let v3: [String] = [
        """
        CREATE TABLE sessions (
          id TEXT PRIMARY KEY NOT NULL,
          first_at REAL NOT NULL,
          last_at REAL NOT NULL,
          requests INTEGER NOT NULL,
          input_tokens INTEGER NOT NULL,
          output_tokens INTEGER NOT NULL,
          cost_nano_usd INTEGER NOT NULL,              -- sum over the priced calls
          unpriced INTEGER NOT NULL,                   -- calls without a cost
          models TEXT NOT NULL                         -- distinct models, comma-separated
        ) WITHOUT ROWID
        """,
        "CREATE INDEX sessions_by_activity ON sessions (last_at, id)",
        """
        CREATE TABLE cost_hourly (
          hour INTEGER NOT NULL,                       -- Unix seconds of the hour's start (UTC)
          provider TEXT NOT NULL,
          model TEXT NOT NULL,                         -- response model, else requested model, else ''
          key_fingerprint TEXT NOT NULL,               -- '' for calls without a key
          requests INTEGER NOT NULL,
          input_tokens INTEGER NOT NULL,
          output_tokens INTEGER NOT NULL,
          cost_nano_usd INTEGER NOT NULL,
          unpriced INTEGER NOT NULL,                   -- calls without a cost
          unpriced_listed INTEGER NOT NULL,            -- of those, calls with a model and token counts
          unpriced_input_tokens INTEGER NOT NULL,
          unpriced_output_tokens INTEGER NOT NULL,
          PRIMARY KEY (hour, provider, model, key_fingerprint)
        ) WITHOUT ROWID
        """,
        """
        CREATE TRIGGER calls_hourly_insert AFTER INSERT ON calls BEGIN
          INSERT INTO cost_hourly VALUES (
            \(hour("new")), new.provider, coalesce(new.response_model, new.model, ''), coalesce(new.key_fingerprint, ''),
            1, coalesce(new.input_tokens, 0), coalesce(new.output_tokens, 0), coalesce(new.cost_nano_usd, 0),
            new.cost_nano_usd IS NULL, \(listed("new")), \(listed("new")) * coalesce(new.input_tokens, 0),
            \(listed("new")) * coalesce(new.output_tokens, 0))
          ON CONFLICT (hour, provider, model, key_fingerprint) DO UPDATE SET
            requests = requests + 1, input_tokens = input_tokens + excluded.input_tokens,
            output_tokens = output_tokens + excluded.output_tokens, cost_nano_usd = cost_nano_usd + excluded.cost_nano_usd,
            unpriced = unpriced + excluded.unpriced, unpriced_listed = unpriced_listed + excluded.unpriced_listed,
            unpriced_input_tokens = unpriced_input_tokens + excluded.unpriced_input_tokens,
            unpriced_output_tokens = unpriced_output_tokens + excluded.unpriced_output_tokens;
        END
        """,
        """
        CREATE TRIGGER calls_hourly_delete AFTER DELETE ON calls BEGIN
          UPDATE cost_hourly SET
            requests = requests - 1, input_tokens = input_tokens - coalesce(old.input_tokens, 0),
            output_tokens = output_tokens - coalesce(old.output_tokens, 0),
            cost_nano_usd = cost_nano_usd - coalesce(old.cost_nano_usd, 0), unpriced = unpriced - (old.cost_nano_usd IS NULL),
            unpriced_listed = unpriced_listed - \(listed("old")),
            unpriced_input_tokens = unpriced_input_tokens - \(listed("old")) * coalesce(old.input_tokens, 0),
            unpriced_output_tokens = unpriced_output_tokens - \(listed("old")) * coalesce(old.output_tokens, 0)
          WHERE \(rollupKey("old"));
          DELETE FROM cost_hourly WHERE \(rollupKey("old")) AND requests = 0;
        END
        """,
        """
        CREATE TRIGGER calls_hourly_reprice AFTER UPDATE OF cost_nano_usd ON calls BEGIN
          UPDATE cost_hourly SET
            cost_nano_usd = cost_nano_usd - coalesce(old.cost_nano_usd, 0) + coalesce(new.cost_nano_usd, 0),
            unpriced = unpriced - (old.cost_nano_usd IS NULL) + (new.cost_nano_usd IS NULL),
            unpriced_listed = unpriced_listed - \(listed("old")) + \(listed("new")),
            unpriced_input_tokens = unpriced_input_tokens + (\(listed("new")) - \(listed("old"))) * coalesce(old.input_tokens, 0),
            unpriced_output_tokens = unpriced_output_tokens + (\(listed("new")) - \(listed("old"))) * coalesce(old.output_tokens, 0)
          WHERE \(rollupKey("old"));
        END
        """,
        """
        CREATE TRIGGER calls_session_insert AFTER INSERT ON calls WHEN new.session_id IS NOT NULL BEGIN
          INSERT INTO sessions VALUES (
            new.session_id, new.created_at, new.created_at, 1, coalesce(new.input_tokens, 0),
            coalesce(new.output_tokens, 0), coalesce(new.cost_nano_usd, 0), new.cost_nano_usd IS NULL,
            coalesce(new.response_model, new.model, ''))
          ON CONFLICT (id) DO UPDATE SET
            first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at),
            requests = requests + 1, input_tokens = input_tokens + excluded.input_tokens,
            output_tokens = output_tokens + excluded.output_tokens, cost_nano_usd = cost_nano_usd + excluded.cost_nano_usd,
            unpriced = unpriced + excluded.unpriced,
            models = CASE
              WHEN excluded.models = '' OR instr(',' || models || ',', ',' || excluded.models || ',') > 0 THEN models
              WHEN models = '' THEN excluded.models
              ELSE models || ',' || excluded.models END;
        END
        """,
        """
        CREATE TRIGGER calls_session_delete AFTER DELETE ON calls WHEN old.session_id IS NOT NULL BEGIN
          UPDATE sessions SET
            requests = requests - 1, input_tokens = input_tokens - coalesce(old.input_tokens, 0),
            output_tokens = output_tokens - coalesce(old.output_tokens, 0),
            cost_nano_usd = cost_nano_usd - coalesce(old.cost_nano_usd, 0), unpriced = unpriced - (old.cost_nano_usd IS NULL),
            first_at = coalesce((SELECT min(created_at) FROM calls WHERE session_id = old.session_id), first_at),
            last_at = coalesce((SELECT max(created_at) FROM calls WHERE session_id = old.session_id), last_at),
            models = coalesce(
              (SELECT group_concat(DISTINCT coalesce(response_model, model)) FROM calls WHERE session_id = old.session_id), '')
          WHERE id = old.session_id;
          DELETE FROM sessions WHERE id = old.session_id AND requests = 0;
        END
        """,
        """
        CREATE TRIGGER calls_session_reprice AFTER UPDATE OF cost_nano_usd ON calls WHEN old.session_id IS NOT NULL BEGIN
          UPDATE sessions SET
            cost_nano_usd = cost_nano_usd - coalesce(old.cost_nano_usd, 0) + coalesce(new.cost_nano_usd, 0),
            unpriced = unpriced - (old.cost_nano_usd IS NULL) + (new.cost_nano_usd IS NULL)
          WHERE id = old.session_id;
        END
        """,
        // Databases made before this migration: the sums of the calls they hold.
        """
        INSERT INTO cost_hourly
        SELECT \(hour("calls")), provider, coalesce(response_model, model, ''), coalesce(key_fingerprint, ''),
          count(*), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), coalesce(sum(cost_nano_usd), 0),
          sum(cost_nano_usd IS NULL), sum(\(listed("calls"))), sum(\(listed("calls")) * coalesce(input_tokens, 0)),
          sum(\(listed("calls")) * coalesce(output_tokens, 0))
        FROM calls GROUP BY 1, 2, 3, 4
        """,
        """
        INSERT INTO sessions
        SELECT session_id, min(created_at), max(created_at), count(*), coalesce(sum(input_tokens), 0),
          coalesce(sum(output_tokens), 0), coalesce(sum(cost_nano_usd), 0), sum(cost_nano_usd IS NULL),
          coalesce(group_concat(DISTINCT coalesce(response_model, model)), '')
        FROM calls WHERE session_id IS NOT NULL GROUP BY session_id
        """,
    ]

    static let v1: [String] = [
            """
            CREATE TABLE calls (
              -- identity
              id TEXT PRIMARY KEY NOT NULL,                 -- UUIDv7: sorts by creation time
              created_at REAL NOT NULL,                     -- Unix seconds, request received
              session_id TEXT,
              session_source TEXT CHECK (session_source IN ('header', 'body', 'auto')),
              provider TEXT NOT NULL,
              endpoint TEXT NOT NULL,                       -- upstream path, e.g. /v1/chat/completions
              api_format TEXT NOT NULL,                     -- openai.chat, generic, ...
              key_fingerprint TEXT,                         -- keyed hash of the provider key, never the key
              client_address TEXT,
              tags TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(tags)),
              -- request
              model TEXT,
              parameters TEXT CHECK (parameters IS NULL OR json_valid(parameters)),
              context TEXT CHECK (context IS NULL OR json_valid(context)),
              chat_input TEXT,
              is_stream INTEGER NOT NULL CHECK (is_stream IN (0, 1)),
              usage_injected INTEGER NOT NULL DEFAULT 0 CHECK (usage_injected IN (0, 1)),
              no_log INTEGER NOT NULL DEFAULT 0 CHECK (no_log IN (0, 1)),
              -- response
              http_status INTEGER,
              output TEXT,
              outputs TEXT CHECK (outputs IS NULL OR json_valid(outputs)),   -- every choice's text when n > 1
              tool_calls TEXT CHECK (tool_calls IS NULL OR json_valid(tool_calls)),
              finish_reason TEXT,
              response_model TEXT,
              error_type TEXT,
              error_message TEXT,
              outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'upstream_error', 'unreachable', 'client_cancelled', 'timeout')),
              -- metrics
              input_tokens INTEGER CHECK (input_tokens >= 0),
              output_tokens INTEGER CHECK (output_tokens >= 0),
              total_tokens INTEGER CHECK (total_tokens >= 0),
              cached_tokens INTEGER CHECK (cached_tokens >= 0),
              cache_write_tokens INTEGER CHECK (cache_write_tokens >= 0),
              reasoning_tokens INTEGER CHECK (reasoning_tokens >= 0),
              usage_source TEXT CHECK (usage_source IN ('upstream', 'estimated')),
              usage_repeated INTEGER NOT NULL DEFAULT 0 CHECK (usage_repeated IN (0, 1)),
              usage_checks INTEGER NOT NULL DEFAULT 0,      -- bits: 1 usage missing, 2 estimated, 4 repeated, 8 zero output tokens, 16 cost unknown
              cost_nano_usd INTEGER,                        -- NULL = unknown (unpriced model or no usage), never a silent 0
              pricing_version TEXT,
              latency_s REAL NOT NULL CHECK (latency_s >= 0),
              ttft_s REAL,
              itl_s REAL,
              itl_p95_s REAL,
              itl_max_s REAL,
              tokens_per_second REAL,
              server_metrics TEXT CHECK (server_metrics IS NULL OR json_valid(server_metrics)),  -- the provider's own clocks (Ollama)
              -- conversation threading: the node of the context's last message, and of this call's reply
              context_node INTEGER REFERENCES nodes (id),
              reply_node INTEGER REFERENCES nodes (id)
            )
            """,
            """
            CREATE INDEX calls_by_time ON calls (created_at)
            """,
            """
            CREATE INDEX calls_by_session ON calls (session_id, created_at) WHERE session_id IS NOT NULL
            """,
            """
            CREATE INDEX calls_by_model ON calls (model, created_at)
            """,
            """
            CREATE TABLE payloads (
              call_id TEXT PRIMARY KEY NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
              encoding TEXT NOT NULL CHECK (encoding IN ('zlib')),
              request BLOB NOT NULL,                        -- the request body as received, compressed
              request_size INTEGER NOT NULL CHECK (request_size >= 0),
              response BLOB NOT NULL,                       -- the response bytes as received (a stream as streamed), compressed
              response_size INTEGER NOT NULL CHECK (response_size >= 0),
              response_content_encoding TEXT                -- the upstream's Content-Encoding, if the bytes are still encoded
            ) WITHOUT ROWID
            """,
        """
        CREATE TABLE messages (
          id INTEGER PRIMARY KEY,
          hash BLOB NOT NULL UNIQUE,                   -- first 16 bytes of SHA-256 of the normalized message's canonical JSON
          message TEXT NOT NULL CHECK (json_valid(message))   -- the message as first seen
        )
        """,
        """
        CREATE TABLE nodes (
          id INTEGER PRIMARY KEY,
          parent_id INTEGER NOT NULL,                  -- 0 for the first message of a conversation
          message_id INTEGER NOT NULL REFERENCES messages (id),
          UNIQUE (parent_id, message_id)
        )
        """,
        "CREATE INDEX calls_by_reply_node ON calls (reply_node) WHERE reply_node IS NOT NULL",
        """
        CREATE TABLE tags (
          call_id TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
          key TEXT NOT NULL,
          value TEXT NOT NULL,
          PRIMARY KEY (call_id, key)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX tags_by_key ON tags (key, value)",
        "CREATE INDEX calls_by_key ON calls (key_fingerprint, created_at)",
        "CREATE VIRTUAL TABLE calls_fts USING fts5 (chat_input, output, content = 'calls', content_rowid = 'rowid')",
    ]
}
