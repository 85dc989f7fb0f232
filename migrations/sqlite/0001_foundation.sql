-- Holdfast foundation: bot sessions (exactly as the design record, plus additive nullable columns)
-- and the append-only audit trail shared by every kind of session.

CREATE TABLE bot_sessions (
    session_id        TEXT PRIMARY KEY,
    created_at        TEXT NOT NULL,
    last_message      TEXT,
    status            TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
    qr_data           TEXT,
    updated_at        TEXT NOT NULL,
    -- additive, nullable
    bot_type          TEXT,
    owner             TEXT,
    connection_detail TEXT,
    version           INTEGER DEFAULT 1,
    last_message_at   TEXT,
    auth_state        BLOB
);

CREATE INDEX ix_bot_sessions_status ON bot_sessions (status, session_id);
CREATE INDEX ix_bot_sessions_owner ON bot_sessions (owner, session_id);

CREATE TABLE session_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    session_kind TEXT NOT NULL CHECK (session_kind IN ('generation', 'bot')),
    session_id   TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    occurred_at  TEXT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    from_state   TEXT,
    to_state     TEXT,
    detail       TEXT,
    UNIQUE (session_kind, session_id, seq)
);

-- Append-only: the audit trail can be added to, never edited or deleted.
CREATE TRIGGER session_events_no_update BEFORE UPDATE ON session_events
BEGIN
    SELECT RAISE(ABORT, 'session_events is append-only');
END;

CREATE TRIGGER session_events_no_delete BEFORE DELETE ON session_events
BEGIN
    SELECT RAISE(ABORT, 'session_events is append-only');
END;
