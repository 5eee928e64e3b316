-- What connectors wrote on their calls (the `log` import, stdout and
-- stderr), whatever the outcome. A ring per trigger: each batch written
-- removes that trigger's entries past the newest `[logs] keep_per_trigger`.
-- No foreign key: a source's calls are kept under the source's id.
CREATE TABLE call_logs (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    trigger_id      TEXT NOT NULL,
    at_ms           INTEGER NOT NULL,
    -- `deliver` or `poll`.
    export          TEXT NOT NULL,
    -- `accepted`, `rejected`, `responded`, `polled`, or the failure's code.
    outcome         TEXT NOT NULL,
    plugin_version  TEXT NOT NULL,
    node            TEXT NOT NULL,
    text            TEXT NOT NULL,
    -- Bytes past the per-call cap.
    dropped_bytes   INTEGER NOT NULL,
    -- Calls of this trigger just before this one whose logs were not kept
    -- (over the per-trigger rate).
    skipped_calls   INTEGER NOT NULL
);
CREATE INDEX call_logs_newest ON call_logs (trigger_id, seq DESC);
