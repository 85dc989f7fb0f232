-- Generation sessions: one row per session (with its materialized output) and a durable, ordered event log.

CREATE TABLE generation_sessions (
    id                  TEXT PRIMARY KEY,
    owner               TEXT NOT NULL,
    backend             TEXT NOT NULL,
    model               TEXT NOT NULL,
    input               TEXT NOT NULL,              -- JSON array of {role, content}
    parameters          TEXT NOT NULL,              -- JSON {temperature, top_p, max_tokens, seed, stop}
    metadata            TEXT,                       -- JSON object of strings
    status              TEXT NOT NULL CHECK (status IN ('queued', 'running', 'paused', 'completed', 'cancelled', 'failed')),
    desired_state       TEXT NOT NULL CHECK (desired_state IN ('running', 'paused', 'cancelled')),
    pause_reason        TEXT,
    error               TEXT,
    finish_reason       TEXT,
    input_tokens        INTEGER,
    output_tokens       INTEGER NOT NULL DEFAULT 0,
    previous_session_id TEXT,
    forked_from         TEXT,
    forked_at_seq       INTEGER,
    continuation        TEXT,
    output              TEXT NOT NULL DEFAULT '',   -- materialized: the coalesced chunks appended once per flush
    last_seq            INTEGER NOT NULL DEFAULT 0,
    attempts            INTEGER NOT NULL DEFAULT 0, -- runs started; also fences writes of a stale run
    idempotency_key     TEXT,
    request_hash        TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    completed_at        TEXT,
    version             INTEGER NOT NULL DEFAULT 1
);

-- Retries of a start with the same Idempotency-Key return the same session.
CREATE UNIQUE INDEX ux_generation_sessions_idempotency ON generation_sessions (owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX ix_generation_sessions_status ON generation_sessions (status, id);
CREATE INDEX ix_generation_sessions_owner ON generation_sessions (owner, id);

-- Ordered events per session: output chunks (payload = the text) and status changes (payload = JSON).
-- Kept until the session is deleted.
CREATE TABLE generation_log (
    session_id TEXT NOT NULL REFERENCES generation_sessions (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    type       TEXT NOT NULL CHECK (type IN ('chunk', 'status')),
    payload    TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
