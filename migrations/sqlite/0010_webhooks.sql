-- Signed webhooks (issue 12, item 7). A subscription belongs to one owner (an API key's user) and hears the events
-- of that owner's sessions. The secret is stored encrypted (AES-256-GCM like bot login state). Every event is written
-- to webhook_outbox in the same transaction as the change that caused it, one row per matching subscription; the row
-- id is the Standard Webhooks message id (webhook-id), kept across retries and restarts. The row is also the delivery
-- log: attempts, the last answer and when it is due again.
CREATE TABLE webhook_subscriptions (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    url         TEXT NOT NULL,
    event_types TEXT NOT NULL,
    secret      BLOB NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE INDEX ix_webhook_subscriptions_owner ON webhook_subscriptions (owner, id);

CREATE TABLE webhook_outbox (
    id              TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    session_kind    TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_attempt_at TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    delivered_at    TEXT
);

CREATE INDEX ix_webhook_outbox_due ON webhook_outbox (status, next_attempt_at);
CREATE INDEX ix_webhook_outbox_subscription ON webhook_outbox (subscription_id, created_at);
