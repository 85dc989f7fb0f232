-- Bots across nodes: the node whose connector runs a bot session (lease_holder), until when (lease_expires_at), and
-- the fencing token (lease_epoch) that grows with every claim and takeover, so a write of a node that lost the lease
-- is refused. Null holder and expiry: nobody runs the bot's connection (ended, or its node stopped gracefully).
ALTER TABLE bot_sessions ADD COLUMN IF NOT EXISTS lease_holder text;
ALTER TABLE bot_sessions ADD COLUMN IF NOT EXISTS lease_expires_at timestamptz;
ALTER TABLE bot_sessions ADD COLUMN IF NOT EXISTS lease_epoch bigint NOT NULL DEFAULT 0;

-- A node's bot leases: what its renewal looks at.
CREATE INDEX IF NOT EXISTS ix_bot_sessions_lease_holder ON bot_sessions (lease_holder)
    WHERE lease_holder IS NOT NULL;

-- Settings every node of this database must agree on, written once by the first node that starts. Holds
-- bot_auth_key_fingerprint: an HMAC-SHA-256 of a fixed label under Bots:AuthStateKey (never the key), so a node with
-- another key refuses to start instead of failing to decrypt the bots' login state.
CREATE TABLE IF NOT EXISTS store_settings (
    name   text PRIMARY KEY,
    value  text NOT NULL,
    set_at timestamptz NOT NULL
);

ALTER TABLE store_settings ENABLE ROW LEVEL SECURITY;
