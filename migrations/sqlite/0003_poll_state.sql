-- What polling did for each polling trigger: the basis of /health and of
-- the scheduler's backoff. Kept across disable, enable, version swaps and
-- restarts; reset only when the operator asks.
CREATE TABLE trigger_polls (
    trigger_id           TEXT PRIMARY KEY NOT NULL REFERENCES triggers(id) ON DELETE CASCADE,
    polls                INTEGER NOT NULL DEFAULT 0,
    failures             INTEGER NOT NULL DEFAULT 0,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    events               INTEGER NOT NULL DEFAULT 0,
    last_poll_at_ms      INTEGER,
    last_success_at_ms   INTEGER,
    last_event_at_ms     INTEGER,
    last_error           TEXT,
    last_duration_ms     INTEGER
);
