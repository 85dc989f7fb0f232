-- The nodes of a cluster (several `holdfast serve` on one database): each node upserts its row with the statement that
-- renews its leases (heartbeat_at), and marks it stopped on a graceful stop. Sessions a node holds are the rows whose
-- lease_holder is its node_id. Read by `holdfast nodes`, `holdfast status` and /metrics.
CREATE TABLE IF NOT EXISTS cluster_nodes (
    node_id      text PRIMARY KEY,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    stopped_at   timestamptz
);

ALTER TABLE cluster_nodes ENABLE ROW LEVEL SECURITY;
