-- Derived tables: rebuilt from the log at will; ReplacingMergeTree keys make a re-write harmless.
-- Every key column is fixed by the event it came from, so a duplicate lands in the same
-- partition and sort position as the original.  Read with FINAL (or argMax) to count once.
--
-- sampling_items: one row per test item and value; ordered for per-enterprise, per-item series.
-- judgements: one row per sample; per-enterprise timeline by sampling date.
-- effects: every effect of every event, in log order.
-- credit_files: credit-file snapshots, one row per (enterprise, seq): the newest is max(seq).
-- checkpoints: how far the derived tables are written (ReplacingMergeTree(seq): the highest wins).
CREATE TABLE IF NOT EXISTS sampling_items (
    event_id String,
    enterprise_id String,
    category String,
    sample_no String,
    product String,
    lab String,
    item_code String,
    item_name String,
    item_class String,
    value_index UInt8,
    value Nullable(Float64),
    not_detected UInt8,
    unit String,
    limit_text String,
    standard String,
    verdict String,
    reason String,
    lab_verdict String,
    sampled_on Date,
    production_date Nullable(Date),
    occurred_at DateTime
) ENGINE = ReplacingMergeTree
ORDER BY (enterprise_id, item_code, sampled_on, event_id, value_index);

CREATE TABLE IF NOT EXISTS judgements (
    event_id String,
    enterprise_id String,
    category String,
    sample_no String,
    product String,
    verdict String,
    failed_items Array(String),
    disagreements Array(String),
    unknown Array(String),
    sampled_on Date,
    occurred_at DateTime
) ENGINE = ReplacingMergeTree ORDER BY (enterprise_id, sampled_on, event_id);

CREATE TABLE IF NOT EXISTS effects (
    seq UInt64,
    idx UInt32,
    kind String,
    enterprise_id String,
    event_id String,
    occurred_at DateTime,
    data String
) ENGINE = ReplacingMergeTree ORDER BY (seq, idx);

CREATE TABLE IF NOT EXISTS credit_files (
    enterprise_id String,
    seq UInt64,
    body String
) ENGINE = ReplacingMergeTree ORDER BY (enterprise_id, seq);

CREATE TABLE IF NOT EXISTS checkpoints (
    name String,
    seq UInt64
) ENGINE = ReplacingMergeTree(seq) ORDER BY name
