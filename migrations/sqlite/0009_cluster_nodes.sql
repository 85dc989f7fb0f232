-- The node of this database (SQLite has one): its row is upserted with the statement that renews its leases
-- (heartbeat_at) and marked stopped on a graceful stop. Read by `holdfast nodes`, `holdfast status` and /metrics.
CREATE TABLE IF NOT EXISTS cluster_nodes (
    node_id      TEXT PRIMARY KEY,
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    stopped_at   TEXT
);
