-- Generation sessions: one row per session (with its materialized output) and a durable, ordered event log.
-- The same tables and columns as migrations/sqlite/0002_generation_sessions.sql.

CREATE TABLE IF NOT EXISTS generation_sessions (
    id                  text PRIMARY KEY,
    owner               text NOT NULL,
    backend             text NOT NULL,
    model               text NOT NULL,
    input               jsonb NOT NULL,             -- array of {role, content}
    parameters          jsonb NOT NULL,             -- {temperature, top_p, max_tokens, seed, stop}
    metadata            jsonb,                      -- object of strings
    status              text NOT NULL CHECK (status IN ('queued', 'running', 'paused', 'completed', 'cancelled', 'failed')),
    desired_state       text NOT NULL CHECK (desired_state IN ('running', 'paused', 'cancelled')),
    pause_reason        text,
    error               text,
    finish_reason       text,
    input_tokens        bigint,
    output_tokens       bigint NOT NULL DEFAULT 0,
    previous_session_id text,
    forked_from         text,
    forked_at_seq       bigint,
    continuation        text,
    output              text NOT NULL DEFAULT '',   -- materialized: the coalesced chunks appended once per flush
    last_seq            bigint NOT NULL DEFAULT 0,
    attempts            integer NOT NULL DEFAULT 0, -- runs started; also fences writes of a stale run
    idempotency_key     text,
    request_hash        text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz,
    version             bigint NOT NULL DEFAULT 1
);

-- Retries of a start with the same Idempotency-Key return the same session.
CREATE UNIQUE INDEX IF NOT EXISTS ux_generation_sessions_idempotency ON generation_sessions (owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_generation_sessions_status ON generation_sessions (status, id);
CREATE INDEX IF NOT EXISTS ix_generation_sessions_owner ON generation_sessions (owner, id);

-- Ordered events per session: output chunks (payload = the text) and status changes (payload = JSON).
CREATE TABLE IF NOT EXISTS generation_log (
    session_id text NOT NULL REFERENCES generation_sessions (id) ON DELETE CASCADE,
    seq        bigint NOT NULL,
    type       text NOT NULL CHECK (type IN ('chunk', 'status')),
    payload    text NOT NULL,
    PRIMARY KEY (session_id, seq)
);

ALTER TABLE generation_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE generation_log ENABLE ROW LEVEL SECURITY;
