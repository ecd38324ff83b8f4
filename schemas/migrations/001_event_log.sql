-- The event log of the embedded runtime: append-only, in the order accepted.
-- Replays read it by seq; duplicates never reach it (the runtime checks event_id first).
-- ReplacingMergeTree on seq: a batch whose INSERT is retried (or re-sent after an error the
-- caller never acknowledged) collapses to one row per seq; read with FINAL.
CREATE TABLE IF NOT EXISTS event_log (
    seq UInt64,
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
    body String
) ENGINE = ReplacingMergeTree ORDER BY seq
