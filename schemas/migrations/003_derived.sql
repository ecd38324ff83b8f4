-- Derived tables: rebuilt from the log at will; ReplacingMergeTree keys make a re-write harmless.
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
) ENGINE = ReplacingMergeTree ORDER BY (enterprise_id, item_code, sampled_on, event_id, value_index);

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
) ENGINE = ReplacingMergeTree ORDER BY (enterprise_id, event_id);

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
) ENGINE = ReplacingMergeTree(seq) ORDER BY enterprise_id;

CREATE TABLE IF NOT EXISTS checkpoints (
    name String,
    seq UInt64
) ENGINE = ReplacingMergeTree(seq) ORDER BY name
