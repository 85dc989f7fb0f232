-- The connection state a bot runtime reports beside the design record's status (additive, nullable):
-- starting | awaiting_qr | connected | reconnecting | disconnected | logged_out | failed, with the reason, the
-- runtime's disconnect code and when it was reported. connection_detail keeps a readable summary of the same.
ALTER TABLE bot_sessions ADD COLUMN connection_state TEXT
    CHECK (connection_state IN ('starting', 'awaiting_qr', 'connected', 'reconnecting', 'disconnected', 'logged_out', 'failed'));
ALTER TABLE bot_sessions ADD COLUMN connection_reason TEXT;
ALTER TABLE bot_sessions ADD COLUMN connection_code INTEGER;
ALTER TABLE bot_sessions ADD COLUMN connection_changed_at TEXT;
