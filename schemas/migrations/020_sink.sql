-- Distributed mode (`qrisk sink`): the effects the Faust workers published on the effects topic.
-- The embedded `effects` table is keyed by the log's seq, which a partitioned log does not have;
-- here a row is keyed by what a redelivery cannot change: the enterprise, the version of its
-- credit file the event made (one per event applied to the file, clock ticks included) and the
-- effect's index.  A batch the workers or the sink send twice collapses; read with FINAL.
-- log_partition / log_offset say where the event is in the log topic.
CREATE TABLE IF NOT EXISTS stream_effects (
    enterprise_id String,
    file_version UInt64,
    idx UInt32,
    kind String,
    event_id String,
    event_type String,
    occurred_at DateTime,
    log_partition UInt32,
    log_offset UInt64,
    data String
) ENGINE = ReplacingMergeTree ORDER BY (enterprise_id, file_version, idx)
