-- A trigger whose registration failed (`error`) is enabled again
-- automatically, with backoff, until it works or the operator disables it.
ALTER TABLE triggers ADD COLUMN retry_at_ms INTEGER;
ALTER TABLE triggers ADD COLUMN retry_failures INTEGER NOT NULL DEFAULT 0;
CREATE INDEX triggers_retry_due ON triggers (retry_at_ms) WHERE retry_at_ms IS NOT NULL;
