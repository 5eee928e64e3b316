-- What the operator allows each plugin (outbound origins, key-value), as
-- JSON. A plugin without a row is allowed nothing.
CREATE TABLE plugin_grants (
    name            TEXT PRIMARY KEY NOT NULL REFERENCES plugins(name) ON DELETE CASCADE,
    allowance       TEXT NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);
