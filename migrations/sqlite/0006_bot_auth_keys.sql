-- Per-key login state of a bot (e.g. Baileys' signal keys: pre-keys, sessions, sender keys), one row per
-- (type, id), each value encrypted (AES-256-GCM, bound to session, type and id) like bot_sessions.auth_state.
-- A bot runtime writes many keys at once; each write is one transaction.
CREATE TABLE bot_auth_keys (
    session_id TEXT NOT NULL REFERENCES bot_sessions (session_id) ON DELETE CASCADE,
    key_type   TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    value      BLOB NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (session_id, key_type, key_id)
) WITHOUT ROWID;
