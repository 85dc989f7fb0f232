-- create_bot_sessions.sql: paste into the Supabase SQL editor (or run with psql) to create the bot_sessions table of
-- the design record, with Holdfast's additive nullable columns. Safe to run more than once.
--
-- This is the bot_sessions part of migrations/postgres/0001_foundation.sql, which Holdfast applies itself (recorded
-- with a checksum in schema_migrations); a test keeps the two identical. For the whole schema, including the audit
-- trail, run `holdfast migrate --print --provider postgres` and paste its output instead.

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

-- Only the table owner (the role Holdfast connects as) may read or write it, never Supabase's anon/authenticated keys.
ALTER TABLE bot_sessions ENABLE ROW LEVEL SECURITY;
