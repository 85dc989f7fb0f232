-- Users and their API keys. A key's secret is never stored: only its SHA-256 hash and its public id (the part
-- of the key before the secret, shown in listings and used to revoke it).

CREATE TABLE users (
    name       TEXT PRIMARY KEY,
    is_admin   INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    created_at TEXT NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_name    TEXT NOT NULL REFERENCES users (name),
    secret_hash  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT,
    last_used_at TEXT
);

CREATE INDEX ix_api_keys_user ON api_keys (user_name);
