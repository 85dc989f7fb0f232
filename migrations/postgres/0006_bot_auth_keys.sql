-- Per-key login state of a bot (e.g. Baileys' signal keys: pre-keys, sessions, sender keys), one row per
-- (type, id), each value encrypted (AES-256-GCM, bound to session, type and id) like bot_sessions.auth_state.
-- A bot runtime writes many keys at once; each write is one transaction. Idempotent like every migration here.
CREATE TABLE IF NOT EXISTS bot_auth_keys (
    session_id text NOT NULL REFERENCES bot_sessions (session_id) ON DELETE CASCADE,
    key_type   text NOT NULL,
    key_id     text NOT NULL,
    value      bytea NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (session_id, key_type, key_id)
);

-- Not served to Supabase's anon/authenticated roles: row-level security on, no policy.
ALTER TABLE bot_auth_keys ENABLE ROW LEVEL SECURITY;
