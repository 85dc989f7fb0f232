-- The connection state a bot runtime reports beside the design record's status (additive, nullable):
-- starting | awaiting_qr | connected | reconnecting | disconnected | logged_out | failed, with the reason, the
-- runtime's disconnect code and when it was reported. connection_detail keeps a readable summary of the same.
ALTER TABLE bot_sessions ADD COLUMN IF NOT EXISTS connection_state text
    CHECK (connection_state IN ('starting', 'awaiting_qr', 'connected', 'reconnecting', 'disconnected', 'logged_out', 'failed'));
ALTER TABLE bot_sessions ADD COLUMN IF NOT EXISTS connection_reason text;
ALTER TABLE bot_sessions ADD COLUMN IF NOT EXISTS connection_code integer;
ALTER TABLE bot_sessions ADD COLUMN IF NOT EXISTS connection_changed_at timestamptz;
