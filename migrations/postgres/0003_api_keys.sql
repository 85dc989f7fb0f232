-- Users and their API keys. A key's secret is never stored: only its SHA-256 hash and its public id (the part of the
-- key before the secret, shown in listings and used to revoke it). The same tables and columns as
-- migrations/sqlite/0003_api_keys.sql.

CREATE TABLE IF NOT EXISTS users (
    name       text PRIMARY KEY,
    is_admin   boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS api_keys (
    id           text PRIMARY KEY,
    user_name    text NOT NULL REFERENCES users (name),
    secret_hash  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz
);

CREATE INDEX IF NOT EXISTS ix_api_keys_user ON api_keys (user_name);

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
