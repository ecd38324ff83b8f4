-- A re-test (复检) of a sample is final: its original stays on record but no longer counts.
-- superseded_by names the re-test's event; when the re-test arrives after its original, the
-- original's row is written again with it set, and judgements (ReplacingMergeTree on the same
-- key: enterprise, sampling date, event id) keeps that later row.  Counting queries read
-- `FINAL ... WHERE superseded_by = ''`, so a re-tested sample counts once, with its final verdict.
-- (no IF NOT EXISTS: server 18.16 has none for columns; migrate() takes "already exists" as done)
ALTER TABLE judgements ADD COLUMN superseded_by String DEFAULT '';
