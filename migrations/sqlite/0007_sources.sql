-- Sources (contract 0.3.0 `sharing`): one registration at the provider,
-- and one webhook URL, shared by the triggers of one definition on one
-- connection whose key config fields are equal.
CREATE TABLE sources (
    id              TEXT PRIMARY KEY NOT NULL,
    plugin          TEXT NOT NULL REFERENCES plugins(name),
    trigger_name    TEXT NOT NULL,
    -- '' when the triggers have no connection (NULL would not be unique).
    connection_id   TEXT NOT NULL,
    -- The key fields' values, canonical JSON: `{"repository":"o/r"}`.
    source_key      TEXT NOT NULL,
    -- The config (secret props sealed) the registration was made or last
    -- updated with, its events field the union then wanted; the base
    -- config of the next calls when no trigger is enabled.
    config          TEXT NOT NULL,
    -- Sealed: the signing secret of the registration.
    secret          TEXT,
    issued_secrets  TEXT,
    -- disabled: not registered at the provider; enabled: registered;
    -- error: the last registration call failed (see last_error).
    status          TEXT NOT NULL,
    last_error      TEXT,
    expires_at_ms   INTEGER,
    -- When `sync` last ran, and what it said when it failed.
    synced_at_ms    INTEGER,
    sync_error      TEXT,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);
CREATE UNIQUE INDEX sources_by_key ON sources (plugin, trigger_name, connection_id, source_key);

ALTER TABLE triggers ADD COLUMN source_id TEXT REFERENCES sources(id);
CREATE INDEX triggers_by_source ON triggers (source_id) WHERE source_id IS NOT NULL;
-- Host-side filters (a JSON list of rules), checked before events are
-- stored; NULL for none.
ALTER TABLE triggers ADD COLUMN filters TEXT;
-- Unshared triggers are synced too.
ALTER TABLE triggers ADD COLUMN synced_at_ms INTEGER;
ALTER TABLE triggers ADD COLUMN sync_error TEXT;

-- kv entries belong to a trigger or to a source: the owner is no longer
-- a foreign key, and deleting either deletes its entries explicitly.
CREATE TABLE kv_entries_owned (
    trigger_id      TEXT NOT NULL,
    key             TEXT NOT NULL,
    value           BLOB NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (trigger_id, key)
);
INSERT INTO kv_entries_owned SELECT trigger_id, key, value, updated_at_ms FROM kv_entries;
DROP TABLE kv_entries;
ALTER TABLE kv_entries_owned RENAME TO kv_entries;
