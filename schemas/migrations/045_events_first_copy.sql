-- events keeps the first copy of an event in the log, the one the workers folded.  Keyed
-- (enterprise_id, occurred_at, event_id) with no version, a merge kept whichever row was inserted
-- last: a correction sent under a used event_id (which a worker refuses as event_id_conflict) took
-- the folded event's place, or, with another occurred_at, stood beside it as a second row for one
-- id; a plain retry replaced the archived seq and received_at.  Now keyed by (enterprise_id,
-- event_id) with the version bitNot(seq): of the copies of an id for one enterprise (all on its
-- log partition) the lowest seq, the earliest in the log, wins a merge and FINAL.  The version is
-- MATERIALIZED, so a sink of any version writes the same columns as before and cannot set it.
-- (A tick's copies, one per partition, still collapse into one row: partition 0's.)
--
-- As 043: the old table is renamed away first (a sink inserting meanwhile fails with UNKNOWN_TABLE,
-- which it retries, into the new table), every statement may run again after a crash (a RENAME
-- whose source is gone or whose target exists counts as done; the old layout is recreated empty if
-- a cut-short run had dropped it; the copy collapses by key and version), leftovers dropped last.
-- Rows that a merge had already replaced before this migration cannot come back.
CREATE TABLE IF NOT EXISTS events_first_copy (
    event_id String,
    event_type String,
    schema_version UInt16,
    enterprise_id String,
    occurred_at DateTime,
    occurred_ms UInt16,
    received_at DateTime,
    received_ms UInt16,
    source_kind String,
    source_id String,
    seq UInt64,
    body String,
    ver UInt64 MATERIALIZED bitNot(seq)
) ENGINE = ReplacingMergeTree(ver)
ORDER BY (enterprise_id, event_id);
RENAME TABLE events TO events_before_045;
CREATE TABLE IF NOT EXISTS events_before_045 (
    event_id String,
    event_type String,
    schema_version UInt16,
    enterprise_id String,
    occurred_at DateTime,
    occurred_ms UInt16,
    received_at DateTime,
    received_ms UInt16,
    source_kind String,
    source_id String,
    seq UInt64,
    body String
) ENGINE = ReplacingMergeTree
ORDER BY (enterprise_id, occurred_at, event_id);
INSERT INTO events_first_copy (event_id, event_type, schema_version, enterprise_id, occurred_at, occurred_ms, received_at,
                               received_ms, source_kind, source_id, seq, body)
    SELECT event_id, event_type, schema_version, enterprise_id, occurred_at, occurred_ms, received_at,
           received_ms, source_kind, source_id, seq, body FROM events_before_045;
RENAME TABLE events_first_copy TO events;
DROP TABLE IF EXISTS events_before_045;
DROP TABLE IF EXISTS events_first_copy
