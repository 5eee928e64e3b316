-- Nodes and leases. On SQLite one node runs everything and never reads
-- these; on PostgreSQL (several nodes on one database) a job that must run
-- on one node at a time (a trigger's polls, a destination's deliveries, a
-- sweep) is run by the node holding its lease.
CREATE TABLE nodes (
    id              TEXT PRIMARY KEY NOT NULL,
    -- Where the node listens, for operators.
    address         TEXT NOT NULL,
    started_at_ms   INTEGER NOT NULL,
    heartbeat_at_ms INTEGER NOT NULL
);

CREATE TABLE leases (
    name            TEXT PRIMARY KEY NOT NULL,
    holder          TEXT NOT NULL,
    -- Another node may take the lease from this time on.
    expires_at_ms   INTEGER NOT NULL
);
CREATE INDEX leases_of ON leases (holder);
