-- The QR code as a numbered, expiring artifact: qr_seq grows with every new QR, qr_set_at is when it was stored
-- (its expiry is qr_set_at + Bots:QrLifetime, and a QR stored before the service started counts as expired), and
-- qr_attempts counts QR codes since the session was last connected.
ALTER TABLE bot_sessions ADD COLUMN qr_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bot_sessions ADD COLUMN qr_set_at TEXT;
ALTER TABLE bot_sessions ADD COLUMN qr_attempts INTEGER NOT NULL DEFAULT 0;
