-- Holdfast foundation (PostgreSQL / Supabase): the migrations record, bot sessions exactly as the design record (plus
-- additive nullable columns), and the append-only audit trail shared by every kind of session. Every statement is
-- safe to run again (IF NOT EXISTS, OR REPLACE), so the printed script (`holdfast migrate --print --provider
-- postgres`) can be pasted twice, and this applies cleanly after create_bot_sessions.sql was pasted into the Supabase
-- SQL editor.

-- Which migrations are applied, with the SHA-256 of their text (Holdfast refuses a database whose record differs).
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

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

CREATE OR REPLACE TRIGGER session_events_no_change BEFORE UPDATE OR DELETE ON session_events
    FOR EACH ROW EXECUTE FUNCTION holdfast_session_events_append_only();

CREATE OR REPLACE TRIGGER session_events_no_truncate BEFORE TRUNCATE ON session_events
    FOR EACH STATEMENT EXECUTE FUNCTION holdfast_session_events_append_only();

-- Supabase serves the public schema over its REST API with a public anon key: with row-level security on and no
-- policy, only the table owner (the role Holdfast connects as) can read or write these tables, never the anon or
-- authenticated roles.
ALTER TABLE schema_migrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE bot_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_events ENABLE ROW LEVEL SECURITY;
