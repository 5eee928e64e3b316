-- Connections: an account's credentials at a provider, of the kind the
-- plugin's manifest declares (`auth`), shared by the triggers that use it.
CREATE TABLE connections (
    id              TEXT PRIMARY KEY NOT NULL,
    plugin          TEXT NOT NULL REFERENCES plugins(name),
    display_name    TEXT NOT NULL,
    -- secret-text, custom or oauth2.
    kind            TEXT NOT NULL,
    -- connected, or needs-reauth once its credentials stop working.
    status          TEXT NOT NULL,
    -- The credentials, sealed JSON (contract::Credentials).
    credentials     TEXT NOT NULL,
    -- An OAuth2 refresh token, sealed; it never leaves the host.
    refresh_token   TEXT,
    last_error      TEXT,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);

-- The connection a trigger uses; NULL for none.
ALTER TABLE triggers ADD COLUMN connection_id TEXT REFERENCES connections(id);

-- The OAuth2 client an operator registered at a plugin's provider, and
-- endpoint overrides (a self-hosted or tenant-specific provider).
CREATE TABLE oauth_apps (
    plugin          TEXT PRIMARY KEY NOT NULL REFERENCES plugins(name),
    client_id       TEXT NOT NULL,
    -- Sealed.
    client_secret   TEXT NOT NULL,
    authorize_url   TEXT,
    token_url       TEXT,
    updated_at_ms   INTEGER NOT NULL
);
