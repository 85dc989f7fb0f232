-- Runs under leases: the node that holds a running session (lease_holder), until when (lease_expires_at), and the
-- fencing token (lease_epoch) that grows with every claim and every recovery, so a write of a run that lost its
-- lease is refused. Null holder and expiry: not held.

ALTER TABLE generation_sessions ADD COLUMN IF NOT EXISTS lease_holder text;
ALTER TABLE generation_sessions ADD COLUMN IF NOT EXISTS lease_expires_at timestamptz;
ALTER TABLE generation_sessions ADD COLUMN IF NOT EXISTS lease_epoch bigint NOT NULL DEFAULT 0;

-- Running sessions by lease expiry: what a recovery sweep looks at.
CREATE INDEX IF NOT EXISTS ix_generation_sessions_lease_expiry ON generation_sessions (lease_expires_at)
    WHERE status = 'running';
-- A node's leases: what renewal and stop requests look at.
CREATE INDEX IF NOT EXISTS ix_generation_sessions_lease_holder ON generation_sessions (lease_holder)
    WHERE lease_holder IS NOT NULL;
