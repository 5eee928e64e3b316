-- Push delivery. A destination is where a trigger's events are POSTed; a
-- delivery is one (event, destination) job, written in the same
-- transaction as its event (the outbox), so a stored event is an event
-- that will be delivered. Every attempt at a job is kept.
CREATE TABLE destinations (
    id                      TEXT PRIMARY KEY,
    trigger_id              TEXT NOT NULL REFERENCES triggers(id) ON DELETE CASCADE,
    url                     TEXT NOT NULL,
    -- Sealed with the host's key, bound to the destination.
    secret                  TEXT NOT NULL,
    -- The secret before the last rotation, signed with too until the grace ends.
    previous_secret         TEXT,
    previous_secret_until_ms INTEGER,
    -- JSON array of event types, or NULL for every type.
    event_types             TEXT,
    -- enabled | paused | disabled
    status                  TEXT NOT NULL,
    disabled_reason         TEXT,
    -- 1: one job at a time, in event order, a failing job holding the rest.
    ordered                 INTEGER NOT NULL DEFAULT 0,
    max_in_flight           INTEGER,
    rate_per_s              INTEGER,
    -- Set by the first failure after a success, cleared by a success.
    failing_since_ms        INTEGER,
    last_error              TEXT,
    created_at_ms           INTEGER NOT NULL,
    updated_at_ms           INTEGER NOT NULL
);
CREATE INDEX destinations_trigger ON destinations (trigger_id);

CREATE TABLE deliveries (
    id                  TEXT PRIMARY KEY,
    event_seq           INTEGER NOT NULL REFERENCES events(seq) ON DELETE CASCADE,
    event_id            TEXT NOT NULL,
    trigger_id          TEXT NOT NULL,
    destination_id      TEXT NOT NULL REFERENCES destinations(id) ON DELETE CASCADE,
    -- pending | delivered | dead
    status              TEXT NOT NULL,
    -- Attempts since the job was (re)queued; the schedule counts these.
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms  INTEGER NOT NULL,
    last_status         INTEGER,
    last_error          TEXT,
    created_at_ms       INTEGER NOT NULL,
    updated_at_ms       INTEGER NOT NULL,
    delivered_at_ms     INTEGER
);
CREATE INDEX deliveries_due ON deliveries (destination_id, next_attempt_at_ms) WHERE status = 'pending';
CREATE INDEX deliveries_in_order ON deliveries (destination_id, event_seq) WHERE status = 'pending';
CREATE INDEX deliveries_event ON deliveries (event_seq);
-- Listings page by rowid, newest first, within a trigger or a destination.
CREATE INDEX deliveries_trigger ON deliveries (trigger_id);
CREATE INDEX deliveries_destination ON deliveries (destination_id);

CREATE TABLE delivery_attempts (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id     TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    started_at_ms   INTEGER NOT NULL,
    duration_ms     INTEGER NOT NULL,
    -- The receiver's status, NULL when no response came.
    status_code     INTEGER,
    error           TEXT,
    -- The first bytes of the response body, at most 1 KiB.
    response_excerpt TEXT
);
CREATE INDEX delivery_attempts_of ON delivery_attempts (delivery_id, seq);
