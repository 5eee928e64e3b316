-- Renewal of provider subscriptions that expire (contract 0.2.0 `renew`).
-- One row per trigger that reported an expiry; `triggers.expires_at_ms`
-- keeps the expiry itself.
CREATE TABLE trigger_renewals (
    trigger_id          TEXT PRIMARY KEY NOT NULL REFERENCES triggers(id) ON DELETE CASCADE,
    -- When the next renewal (or retry) is due; NULL when nothing expires.
    renew_at_ms         INTEGER,
    -- Renewals that succeeded, in total.
    renewals            INTEGER NOT NULL DEFAULT 0,
    -- Failures since the last success: 0 is healthy.
    failures            INTEGER NOT NULL DEFAULT 0,
    last_error          TEXT,
    last_renewed_at_ms  INTEGER
);
CREATE INDEX trigger_renewals_due ON trigger_renewals (renew_at_ms);

-- Secrets a provider issued at registration (`enable-info.issued-secrets`,
-- contract 0.2.0): a JSON list of [name, value] pairs, sealed like every
-- secret and bound to the trigger. NULL when none were issued.
ALTER TABLE triggers ADD COLUMN issued_secrets TEXT;
