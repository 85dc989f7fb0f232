-- A running session's progress in a narrow row of its own. A group commit advances the counters of every session with
-- a chunk in it; on the session's row (whose text fills pages of its own: one or two 4 KiB pages per session once the
-- output is long) that wrote 4-8 MiB per commit with 1,000 sessions running. Here one page holds the progress of ~60.
-- A row exists exactly while its session is `running` (created by the claim, removed by the transition that ends the
-- run); while it exists, its last_seq, output_tokens and lease_expires_at are the session's and the session row's are
-- as of its last fold or transition (readers take them from here): the lease renewal, every few seconds for every
-- running session, writes here too. lease_holder, lease_epoch and output_seq mirror the session row's.
CREATE TABLE generation_progress (
    session_id    TEXT PRIMARY KEY REFERENCES generation_sessions (id) ON DELETE CASCADE,
    lease_holder  TEXT,
    lease_expires_at TEXT,
    lease_epoch   INTEGER NOT NULL,
    last_seq      INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    output_seq    INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO generation_progress (session_id, lease_holder, lease_expires_at, lease_epoch, last_seq, output_tokens, output_seq)
SELECT id, lease_holder, lease_expires_at, lease_epoch, last_seq, output_tokens, output_seq FROM generation_sessions WHERE status = 'running';
