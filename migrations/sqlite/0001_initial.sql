-- triggerhost's store. Times are Unix milliseconds.

-- A connector, by its manifest name; which version serves triggers that do
-- not pin one.
CREATE TABLE plugins (
    name            TEXT PRIMARY KEY NOT NULL,
    active_version  TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);

-- Every uploaded version. The component bytes live in the data dir under
-- plugins/sha256/<hex>.wasm; the digest names them.
CREATE TABLE plugin_versions (
    name            TEXT NOT NULL REFERENCES plugins(name) ON DELETE CASCADE,
    version         TEXT NOT NULL,
    digest          TEXT NOT NULL,
    size_bytes      INTEGER NOT NULL,
    manifest        TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE triggers (
    id              TEXT PRIMARY KEY NOT NULL,
    plugin          TEXT NOT NULL REFERENCES plugins(name),
    -- NULL follows the plugin's active version.
    plugin_version  TEXT,
    trigger_name    TEXT NOT NULL,
    config          TEXT NOT NULL,
    secret          TEXT,
    poll_interval_s INTEGER,
    -- created | enabled | disabled | error
    status          TEXT NOT NULL,
    last_error      TEXT,
    expires_at_ms   INTEGER,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);

CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    trigger_id      TEXT NOT NULL REFERENCES triggers(id) ON DELETE CASCADE,
    dedupe_key      TEXT,
    event_type      TEXT NOT NULL,
    occurred_at_ms  INTEGER,
    payload         TEXT NOT NULL,
    plugin_version  TEXT NOT NULL,
    received_at_ms  INTEGER NOT NULL
);
CREATE UNIQUE INDEX events_dedupe ON events (trigger_id, dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX events_newest ON events (trigger_id, seq DESC);

CREATE TABLE kv_entries (
    trigger_id      TEXT NOT NULL REFERENCES triggers(id) ON DELETE CASCADE,
    key             TEXT NOT NULL,
    value           BLOB NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (trigger_id, key)
);

CREATE TABLE trigger_stats (
    trigger_id      TEXT PRIMARY KEY NOT NULL REFERENCES triggers(id) ON DELETE CASCADE,
    received        INTEGER NOT NULL DEFAULT 0,
    accepted        INTEGER NOT NULL DEFAULT 0,
    rejected        INTEGER NOT NULL DEFAULT 0,
    duplicates      INTEGER NOT NULL DEFAULT 0,
    errors          INTEGER NOT NULL DEFAULT 0,
    fuel_used       INTEGER NOT NULL DEFAULT 0
);

-- Failed calls (limit hits, traps, connector errors), newest kept per trigger.
CREATE TABLE trigger_failures (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    trigger_id      TEXT NOT NULL REFERENCES triggers(id) ON DELETE CASCADE,
    export          TEXT NOT NULL,
    code            TEXT NOT NULL,
    message         TEXT NOT NULL,
    log             TEXT NOT NULL,
    at_ms           INTEGER NOT NULL
);
CREATE INDEX trigger_failures_newest ON trigger_failures (trigger_id, seq DESC);
