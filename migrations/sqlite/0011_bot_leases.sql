-- Bot leases (the same columns as on PostgreSQL; on SQLite one node holds every lease): the node whose connector
-- runs a bot session, until when, and the fencing token that grows with every claim, so a stale write is refused.
ALTER TABLE bot_sessions ADD COLUMN lease_holder TEXT;
ALTER TABLE bot_sessions ADD COLUMN lease_expires_at TEXT;
ALTER TABLE bot_sessions ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;

CREATE INDEX IF NOT EXISTS ix_bot_sessions_lease_holder ON bot_sessions (lease_holder)
    WHERE lease_holder IS NOT NULL;

-- Settings every node of this database must agree on (bot_auth_key_fingerprint: an HMAC-SHA-256 of a fixed label
-- under Bots:AuthStateKey, never the key), written once by the first start.
CREATE TABLE IF NOT EXISTS store_settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL,
    set_at TEXT NOT NULL
);
