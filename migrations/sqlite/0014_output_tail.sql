-- The materialized output is no longer rewritten by every group commit. SQLite rewrites a whole row (overflow pages
-- included) when its size changes, so appending a few tokens to a long output cost as much as writing the output
-- again: with 1,000 running sessions of 6 KB each, one group commit wrote about 6 MB and the writer fell behind.
-- Now `output` holds the text of every chunk up to `output_seq`; the chunks after it are in generation_log only, and
-- readers append them. A group commit folds them in (output || tail, output_seq = last_seq) once 256 events have
-- gathered, and every status change folds them, so only a running session ever has a tail. On PostgreSQL `output`
-- stays complete (exports from SQLite fold the tail; imports into SQLite set output_seq = last_seq).
ALTER TABLE generation_sessions ADD COLUMN output_seq INTEGER NOT NULL DEFAULT 0;

UPDATE generation_sessions SET output_seq = last_seq;
