-- Generation:LogRetention: when the chunk rows of a finished session were merged into one chunk event
-- (NULL: never; the default policy keeps every chunk row until the session is deleted).

ALTER TABLE generation_sessions ADD COLUMN IF NOT EXISTS log_compacted_at timestamptz;

-- Finished sessions whose log is still whole, oldest first: what a compaction sweep looks at.
CREATE INDEX IF NOT EXISTS ix_generation_sessions_compaction ON generation_sessions (completed_at)
    WHERE completed_at IS NOT NULL AND log_compacted_at IS NULL;
