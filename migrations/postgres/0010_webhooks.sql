-- Signed webhooks (issue 12, item 7). A subscription belongs to one owner (an API key's user) and hears the events
-- of that owner's sessions. The secret is stored encrypted (AES-256-GCM like bot login state). Every event is written
-- to webhook_outbox in the same transaction as the change that caused it, one row per matching subscription; the row
-- id is the Standard Webhooks message id (webhook-id), kept across retries and restarts. The row is also the delivery
-- log: attempts, the last answer and when it is due again. Idempotent like every migration here.
CREATE TABLE IF NOT EXISTS webhook_subscriptions (
    id          text PRIMARY KEY,
    owner       text NOT NULL,
    url         text NOT NULL,
    event_types text NOT NULL,
    secret      bytea NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS ix_webhook_subscriptions_owner ON webhook_subscriptions (owner, id);

CREATE TABLE IF NOT EXISTS webhook_outbox (
    id              text PRIMARY KEY,
    subscription_id text NOT NULL,
    event_type      text NOT NULL,
    session_kind    text NOT NULL,
    session_id      text NOT NULL,
    payload         text NOT NULL,
    created_at      timestamptz NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_attempt_at timestamptz,
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz
);

CREATE INDEX IF NOT EXISTS ix_webhook_outbox_due ON webhook_outbox (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS ix_webhook_outbox_subscription ON webhook_outbox (subscription_id, created_at);

-- Not served to Supabase's anon/authenticated roles: row-level security on, no policy.
ALTER TABLE webhook_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_outbox ENABLE ROW LEVEL SECURITY;
