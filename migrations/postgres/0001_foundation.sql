-- Holdfast foundation (PostgreSQL / Supabase): bot sessions exactly as the design record, plus additive nullable
-- columns, and the append-only audit trail shared by every kind of session. Safe to run more than once, so it also
-- applies cleanly after create_bot_sessions.sql was pasted into the Supabase SQL editor.

CREATE TABLE IF NOT EXISTS bot_sessions (
    session_id        text PRIMARY KEY,
    created_at        timestamptz NOT NULL DEFAULT now(),
    last_message      text,
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    qr_data           text,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- additive, nullable
    bot_type          text,
    owner             text,
    connection_detail text,
    version           bigint DEFAULT 1,
    last_message_at   timestamptz,
    auth_state        bytea
);

CREATE INDEX IF NOT EXISTS ix_bot_sessions_status ON bot_sessions (status, session_id);
CREATE INDEX IF NOT EXISTS ix_bot_sessions_owner ON bot_sessions (owner, session_id);

CREATE TABLE IF NOT EXISTS session_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_kind text NOT NULL CHECK (session_kind IN ('generation', 'bot')),
    session_id   text NOT NULL,
    seq          bigint NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    action       text NOT NULL,
    from_state   text,
    to_state     text,
    detail       text,
    UNIQUE (session_kind, session_id, seq)
);

-- Append-only: the audit trail can be added to, never edited, deleted or truncated.
CREATE OR REPLACE FUNCTION holdfast_session_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'session_events is append-only';
END;
$$;

DROP TRIGGER IF EXISTS session_events_no_change ON session_events;
CREATE TRIGGER session_events_no_change BEFORE UPDATE OR DELETE ON session_events
    FOR EACH ROW EXECUTE FUNCTION holdfast_session_events_append_only();

DROP TRIGGER IF EXISTS session_events_no_truncate ON session_events;
CREATE TRIGGER session_events_no_truncate BEFORE TRUNCATE ON session_events
    FOR EACH STATEMENT EXECUTE FUNCTION holdfast_session_events_append_only();

-- Supabase exposes the public schema over its REST API: with row level security on and no policy, only the table
-- owner (the role Holdfast connects as) can read or write these tables, never the anon or authenticated keys.
ALTER TABLE bot_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_events ENABLE ROW LEVEL SECURITY;
