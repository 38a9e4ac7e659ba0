-- gemini-gateway schema, the current version (PRAGMA user_version; gatewayd/src/store/mod.rs
-- migrates older databases to it).
-- Times are INTEGER milliseconds since the Unix epoch, UTC.

-- Every Gemini key in the pool. `state` is the operator/health state; "cooling" is derived from
-- key_cooldowns, because a key cools per model and stays usable for the others.
CREATE TABLE keys (
    id             INTEGER PRIMARY KEY,
    key            TEXT    NOT NULL UNIQUE,
    state          TEXT    NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'invalid', 'disabled')),
    failures       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    invalid_reason TEXT,
    added_at       INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    -- When an upstream attempt last used the key, written with the request log.
    last_used      INTEGER,
    -- The operator's labels (keypool/labels.rs): `gemini` or `vertex`; a group for
    -- models.groups; the Google project (its keys share cooldowns); a free note.
    kind           TEXT    NOT NULL DEFAULT 'gemini' CHECK (kind IN ('gemini', 'vertex')),
    key_group      TEXT,
    project        TEXT,
    note           TEXT
);

-- A rate-limited key rests for one model until a time, for a reason (rpm, tpm, rpd, unknown).
CREATE TABLE key_cooldowns (
    key_id INTEGER NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
    model  TEXT    NOT NULL,
    until  INTEGER NOT NULL,
    reason TEXT    NOT NULL,
    PRIMARY KEY (key_id, model)
);

-- Every key the store has ever held, so `keys.api_keys` seeds a key only once: a key removed
-- with gbctl stays removed across restarts.
CREATE TABLE key_history (
    key TEXT PRIMARY KEY
);

-- Runtime settings: dotted field name -> TOML literal. They override file and environment.
CREATE TABLE settings (
    name       TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Client tokens the daemon generated because none was configured; used only while
-- auth.tokens is empty in every layer, so tokens configured later take over.
CREATE TABLE generated_tokens (
    token      TEXT    PRIMARY KEY,
    created_at INTEGER NOT NULL
);

-- Responses API responses kept for previous_response_id (dialect/responses): the response as
-- returned, and the whole conversation up to it as input items. Owner: SHA-256 of the client token.
CREATE TABLE stored_responses (
    id           TEXT    PRIMARY KEY,
    owner        TEXT    NOT NULL,
    key_id       INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    response     TEXT    NOT NULL,
    conversation TEXT    NOT NULL
);

-- One row per client request.
CREATE TABLE request_log (
    id                INTEGER PRIMARY KEY,
    ts                INTEGER NOT NULL,
    route             TEXT    NOT NULL,
    model             TEXT,
    key_id            INTEGER,
    status            INTEGER NOT NULL,
    latency_ms        INTEGER NOT NULL,
    attempts          INTEGER NOT NULL,
    trail             TEXT    NOT NULL,
    stream            INTEGER NOT NULL,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    error             TEXT,
    -- The resource a request was pinned to (key affinity), e.g. `files/abc`.
    resource          TEXT
);
CREATE INDEX request_log_ts ON request_log (ts);

-- One row per upstream attempt, for per-key counts (requests_24h, errors_24h, last_used).
CREATE TABLE attempt_log (
    id         INTEGER PRIMARY KEY,
    request_id INTEGER NOT NULL REFERENCES request_log (id) ON DELETE CASCADE,
    ts         INTEGER NOT NULL,
    key_id     INTEGER NOT NULL,
    status     INTEGER,
    ok         INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL
);
CREATE INDEX attempt_log_key_ts ON attempt_log (key_id, ts);
CREATE INDEX attempt_log_request ON attempt_log (request_id);

-- One row per failed upstream attempt: the upstream status and body (truncated, keys redacted).
CREATE TABLE error_log (
    id           INTEGER PRIMARY KEY,
    ts           INTEGER NOT NULL,
    route        TEXT    NOT NULL,
    model        TEXT,
    key_id       INTEGER,
    status       INTEGER,
    error        TEXT    NOT NULL,
    body         TEXT,
    request_body TEXT
);
CREATE INDEX error_log_ts ON error_log (ts);

-- Per-minute (span 1) and per-hour (span 60) rollups of request_log (gatewayd/src/store/rollup.rs),
-- written in the same transaction, so keys list, stats and status never scan the raw log.
-- start = minutes since the epoch; key_id 0 = no key, model '' = no model; latency is a
-- histogram (varint bucket/count pairs).
CREATE TABLE request_rollup (
    span              INTEGER NOT NULL,
    start             INTEGER NOT NULL,
    key_id            INTEGER NOT NULL,
    model             TEXT    NOT NULL,
    requests          INTEGER NOT NULL,
    errors            INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency           BLOB    NOT NULL,
    PRIMARY KEY (span, start, key_id, model)
) WITHOUT ROWID;

-- Upstream attempts per key per span (counted in their request's minute), for requests_24h and
-- errors_24h.
CREATE TABLE attempt_rollup (
    span     INTEGER NOT NULL,
    start    INTEGER NOT NULL,
    key_id   INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    failed   INTEGER NOT NULL,
    PRIMARY KEY (span, start, key_id)
) WITHOUT ROWID;

-- Resources created through the pool (uploaded files, ...), each bound to the key that created it
-- and to a SHA-256 of the client token that asked (gatewayd/src/affinity.rs).
CREATE TABLE resources (
    name       TEXT    PRIMARY KEY,
    key_id     INTEGER NOT NULL,
    owner      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
