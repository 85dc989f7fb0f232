-- The materialized output is no longer rewritten by every group commit (SQLite's migration 0014, for PostgreSQL).
-- PostgreSQL writes a new row version on every UPDATE, and `output || delta` made it detoast, extend and store the whole
-- text again (in TOAST once it passes ~2 kB): each commit cost as much as the session's output so far, for every
-- running session. Now `output` holds the text of every chunk up to `output_seq`; the chunks after it are in
-- generation_log only, and readers append them. A group commit folds them in (output || tail, output_seq = last_seq)
-- once 256 events have gathered, and every status change folds them, so only a running session ever has a tail.
-- Exports fold the tail in and leave the column out; imports set output_seq = last_seq.
--
-- Only when the column is new: run again (a pasted script), the UPDATE would drop the tails of running sessions.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = 'generation_sessions' AND column_name = 'output_seq') THEN
        ALTER TABLE generation_sessions ADD COLUMN output_seq bigint NOT NULL DEFAULT 0;
        UPDATE generation_sessions SET output_seq = last_seq;
    END IF;
END
$$;

-- Room on every page for the new versions of its rows. A running session's row is updated by every group commit (its
-- last seq), by every lease renewal and by its transitions; with full pages (fillfactor 100) about 40 % of those updates
-- could not stay on the row's page, so each wrote a new entry in every index and the table bloated (1,000 running
-- sessions: 152 MB for 1,000 rows after three minutes, 58 % of updates HOT). At 50, 96 % stay on the page (HOT: no
-- index writes, the old version pruned in place) and that table stayed at 18 MB. Pages written before this keep their
-- layout until they are rewritten (VACUUM FULL); the table takes about twice the space of its live rows.
ALTER TABLE generation_sessions SET (fillfactor = 50);
