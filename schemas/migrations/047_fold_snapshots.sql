-- The fold's state at one seq of the log (every credit file with the ids applied, and the alerts
-- stage's book), written by the embedded runtime at a clean shutdown: the next start restores it and
-- folds only the log after it, instead of every event and every clock.tick ever logged (a tick every
-- ten minutes is 52,560 a year, each one re-assessing every enterprise).  Used only when the same fold
-- version, standards catalogue and policy wrote it, and at or before the derived tables' checkpoint;
-- otherwise the start replays the whole log as before.  The newest row counts: a write deletes older ones.
CREATE TABLE IF NOT EXISTS fold_snapshots (
    seq UInt64,
    events UInt64,
    fold_version UInt32,
    catalogue String,
    policy String,
    written_at DateTime,
    state String,
    alerts String
) ENGINE = ReplacingMergeTree
ORDER BY seq
