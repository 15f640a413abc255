CREATE TABLE nodes (
  id INTEGER PRIMARY KEY,
  parent_id INTEGER NOT NULL,                  -- 0 for the first message of a conversation
  message_id INTEGER NOT NULL REFERENCES messages (id),
  UNIQUE (parent_id, message_id)
);

CREATE TABLE tags (
  call_id TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (call_id, key)
) WITHOUT ROWID;

CREATE INDEX tags_by_key ON tags (key, value);

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
) WITHOUT ROWID;

CREATE INDEX sessions_by_activity ON sessions (last_at, id);

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
) WITHOUT ROWID;

CREATE TABLE chain_checkpoints (
  id INTEGER PRIMARY KEY,
  last_rowid INTEGER NOT NULL,               -- retention deleted every call up to this rowid
  chain_hash BLOB NOT NULL,                  -- the last deleted call's link: the next call links to it
  created_at REAL NOT NULL,
  deleted INTEGER NOT NULL,                  -- calls deleted by this retention step
  signature BLOB NOT NULL                    -- HMAC-SHA256 of the above with the database's secret key
);

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
) WITHOUT ROWID;

CREATE VIRTUAL TABLE calls_fts USING fts5 (chat_input, output, content = '', detail = none, columnsize = 0);

CREATE TABLE "payloads" (
  call_rowid INTEGER PRIMARY KEY,    -- the call's rowid in calls; deleted with it (trigger)
  request BLOB NOT NULL,             -- the request body as received, compressed (or its template)
  request_size INTEGER NOT NULL CHECK (request_size >= 0),
  response BLOB NOT NULL,            -- the response bytes as received (a stream as streamed), compressed
  response_size INTEGER NOT NULL CHECK (response_size >= 0),
  response_content_encoding TEXT,    -- the upstream's Content-Encoding, if the bytes are still encoded
  digest BLOB,                       -- set when payload retention dropped the bodies: the chain's record of them
  request_format INTEGER NOT NULL DEFAULT 0,  -- 0: the request as received; 1 - 3: a template over fragments
  fragment_ids BLOB                  -- formats 2, 3: the template's fragments as varints (PayloadFragments)
);

CREATE TABLE "messages" (
  id INTEGER PRIMARY KEY,
  hash BLOB NOT NULL,               -- first 16 bytes of SHA-256 of the normalized message's canonical JSON
  message BLOB NOT NULL             -- the message as first seen: canonical JSON, compressed like payloads
);

CREATE TABLE "fragments" (
  id INTEGER PRIMARY KEY,
  hash BLOB NOT NULL,               -- first 16 bytes of SHA-256 of the fragment's exact bytes
  bytes BLOB NOT NULL,              -- those bytes, compressed like payloads
  size INTEGER NOT NULL CHECK (size >= 0),
  last_rowid INTEGER NOT NULL,      -- the newest call using it; retention drops the unused
  message_id INTEGER                -- compressed against this message's normalized JSON
);

CREATE TABLE message_keys (
  hash BLOB PRIMARY KEY NOT NULL,   -- a row's hash, for rows up to content_keys.merged_through
  id INTEGER NOT NULL               -- its id in messages
) WITHOUT ROWID;

CREATE TABLE fragment_keys (
  hash BLOB PRIMARY KEY NOT NULL,   -- a row's hash, for rows up to content_keys.merged_through
  id INTEGER NOT NULL               -- its id in fragments
) WITHOUT ROWID;

CREATE TABLE content_keys (
  name TEXT PRIMARY KEY NOT NULL,   -- messages, fragments
  merged_through INTEGER NOT NULL   -- rows up to this id have their key in message_keys / fragment_keys
) WITHOUT ROWID;

CREATE TABLE "calls" (
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
);

CREATE INDEX calls_by_time ON calls (created_at);

CREATE INDEX calls_by_session ON calls (session_id, created_at) WHERE session_id IS NOT NULL;

CREATE INDEX calls_by_model ON calls (model, created_at);

CREATE INDEX calls_by_reply_node ON calls (reply_node) WHERE reply_node IS NOT NULL;

CREATE INDEX calls_by_key ON calls (key_fingerprint, created_at);

CREATE TRIGGER calls_hourly_delete AFTER DELETE ON calls BEGIN
  UPDATE cost_hourly SET
    requests = requests - 1, input_tokens = input_tokens - coalesce(old.input_tokens, 0),
    output_tokens = output_tokens - coalesce(old.output_tokens, 0),
    cost_nano_usd = cost_nano_usd - coalesce(old.cost_nano_usd, 0), unpriced = unpriced - (old.cost_nano_usd IS NULL),
    unpriced_listed = unpriced_listed - (old.cost_nano_usd IS NULL AND coalesce(old.response_model, old.model) IS NOT NULL AND old.input_tokens IS NOT NULL),
    unpriced_input_tokens = unpriced_input_tokens - (old.cost_nano_usd IS NULL AND coalesce(old.response_model, old.model) IS NOT NULL AND old.input_tokens IS NOT NULL) * coalesce(old.input_tokens, 0),
    unpriced_output_tokens = unpriced_output_tokens - (old.cost_nano_usd IS NULL AND coalesce(old.response_model, old.model) IS NOT NULL AND old.input_tokens IS NOT NULL) * coalesce(old.output_tokens, 0)
  WHERE hour = CAST(old.created_at / 3600 AS INTEGER) * 3600 AND provider = old.provider AND model = coalesce(old.response_model, old.model, '') AND key_fingerprint = coalesce(old.key_fingerprint, '');
  DELETE FROM cost_hourly WHERE hour = CAST(old.created_at / 3600 AS INTEGER) * 3600 AND provider = old.provider AND model = coalesce(old.response_model, old.model, '') AND key_fingerprint = coalesce(old.key_fingerprint, '') AND requests = 0;
END;

CREATE TRIGGER calls_hourly_reprice AFTER UPDATE OF cost_nano_usd ON calls BEGIN
  UPDATE cost_hourly SET
    cost_nano_usd = cost_nano_usd - coalesce(old.cost_nano_usd, 0) + coalesce(new.cost_nano_usd, 0),
    unpriced = unpriced - (old.cost_nano_usd IS NULL) + (new.cost_nano_usd IS NULL),
    unpriced_listed = unpriced_listed - (old.cost_nano_usd IS NULL AND coalesce(old.response_model, old.model) IS NOT NULL AND old.input_tokens IS NOT NULL) + (new.cost_nano_usd IS NULL AND coalesce(new.response_model, new.model) IS NOT NULL AND new.input_tokens IS NOT NULL),
    unpriced_input_tokens = unpriced_input_tokens + ((new.cost_nano_usd IS NULL AND coalesce(new.response_model, new.model) IS NOT NULL AND new.input_tokens IS NOT NULL) - (old.cost_nano_usd IS NULL AND coalesce(old.response_model, old.model) IS NOT NULL AND old.input_tokens IS NOT NULL)) * coalesce(old.input_tokens, 0),
    unpriced_output_tokens = unpriced_output_tokens + ((new.cost_nano_usd IS NULL AND coalesce(new.response_model, new.model) IS NOT NULL AND new.input_tokens IS NOT NULL) - (old.cost_nano_usd IS NULL AND coalesce(old.response_model, old.model) IS NOT NULL AND old.input_tokens IS NOT NULL)) * coalesce(old.output_tokens, 0)
  WHERE hour = CAST(old.created_at / 3600 AS INTEGER) * 3600 AND provider = old.provider AND model = coalesce(old.response_model, old.model, '') AND key_fingerprint = coalesce(old.key_fingerprint, '');
END;

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
END;

CREATE TRIGGER calls_session_reprice AFTER UPDATE OF cost_nano_usd ON calls WHEN old.session_id IS NOT NULL BEGIN
  UPDATE sessions SET
    cost_nano_usd = cost_nano_usd - coalesce(old.cost_nano_usd, 0) + coalesce(new.cost_nano_usd, 0),
    unpriced = unpriced - (old.cost_nano_usd IS NULL) + (new.cost_nano_usd IS NULL)
  WHERE id = old.session_id;
END;

CREATE TRIGGER calls_payload_delete AFTER DELETE ON calls BEGIN DELETE FROM payloads WHERE call_rowid = old.rowid; END;
