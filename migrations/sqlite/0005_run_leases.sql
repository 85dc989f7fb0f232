-- Runs under leases: the node that runs a session holds it until lease_expires_at and renews it well before;
-- lease_epoch is the fencing token, raised by every claim and every recovery, so a write of a run that lost its
-- lease (a stale epoch) is refused. On SQLite one node holds every lease.

ALTER TABLE generation_sessions ADD COLUMN lease_holder TEXT;
ALTER TABLE generation_sessions ADD COLUMN lease_expires_at TEXT;
ALTER TABLE generation_sessions ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;

-- Running sessions by holder (renewal, stop requests, a node taking its own leases back) and by expiry (recovery).
CREATE INDEX ix_generation_sessions_lease_holder ON generation_sessions (lease_holder) WHERE lease_holder IS NOT NULL;
CREATE INDEX ix_generation_sessions_lease_expiry ON generation_sessions (lease_expires_at) WHERE status = 'running';
