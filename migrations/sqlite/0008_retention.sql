-- Retention: events and failure records older than the retention period
-- (or past a trigger's count cap) are removed by a background sweep.

-- The sweep finds old events by time.
CREATE INDEX events_received ON events (received_at_ms);

-- Dedupe keys of removed events, kept until the dedupe window (longer
-- than retention) is over: a redelivery after its event was removed is
-- still a duplicate.
CREATE TABLE dedupe_keys_retired (
    trigger_id      TEXT NOT NULL,
    dedupe_key      TEXT NOT NULL,
    until_ms        INTEGER NOT NULL,
    PRIMARY KEY (trigger_id, dedupe_key)
) WITHOUT ROWID;
CREATE INDEX dedupe_keys_retired_until ON dedupe_keys_retired (until_ms);

-- Per-trigger overrides of the retention period and count cap; NULL
-- follows `[retention]`.
ALTER TABLE triggers ADD COLUMN retention_s INTEGER;
ALTER TABLE triggers ADD COLUMN retention_events INTEGER;
