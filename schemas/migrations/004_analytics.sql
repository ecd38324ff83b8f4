-- The analytical tables beyond the embedded log: the event archive, grades, fluctuation
-- signals, alerts with their lifecycle, deliveries.  All ReplacingMergeTree keyed by columns a
-- redelivery cannot change, so writing a row twice is harmless; read with FINAL / argMax.
-- Written for ClickHouse 18.16 and current releases alike: DateTime (+ a _ms column where
-- sub-second order matters), no LowCardinality, no DateTime64.

-- events: the archive of every accepted event (envelope columns + the raw JSON body),
-- deduplicated by event_id; ordered for per-enterprise timelines.  (enterprise_id, occurred_at)
-- are part of the event, so a redelivered event has the same key and collapses.
CREATE TABLE IF NOT EXISTS events (
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

-- grade_history: every risk-grade evaluation (A-D) with its score and evidence, per enterprise in time.
CREATE TABLE IF NOT EXISTS grade_history (
    enterprise_id String,
    graded_at DateTime,
    event_id String,
    grade String,
    previous_grade String,
    score Float64,
    static_score Nullable(Float64),
    dynamic_score Nullable(Float64),
    reasons String,
    policy String
) ENGINE = ReplacingMergeTree
ORDER BY (enterprise_id, graded_at, event_id);

-- spc_signals: quality-fluctuation signals (control-chart rule hits) per enterprise and item.
CREATE TABLE IF NOT EXISTS spc_signals (
    enterprise_id String,
    item_code String,
    occurred_at DateTime,
    event_id String,
    chart String,
    rule String,
    point_index UInt32,
    value Float64,
    center Nullable(Float64),
    lcl Nullable(Float64),
    ucl Nullable(Float64),
    side String,
    text_zh String,
    text_en String,
    detail String
) ENGINE = ReplacingMergeTree
ORDER BY (enterprise_id, item_code, occurred_at, event_id, chart, rule);

-- alerts: the current state of each alert; a newer version replaces an older one.
CREATE TABLE IF NOT EXISTS alerts (
    alert_id String,
    enterprise_id String,
    kind String,
    severity String,
    state String,
    title String,
    group_key String,
    assignee String,
    opened_at DateTime,
    updated_at DateTime,
    updated_ms UInt16,
    version UInt64,
    event_id String,
    evidence String
) ENGINE = ReplacingMergeTree(version)
ORDER BY (enterprise_id, alert_id);

-- alert_events: the lifecycle of each alert (opened, acknowledged, rectifying, verified, closed,
-- escalated, silenced…), one row per step.
CREATE TABLE IF NOT EXISTS alert_events (
    alert_id String,
    enterprise_id String,
    version UInt64,
    at DateTime,
    at_ms UInt16,
    action String,
    from_state String,
    to_state String,
    actor String,
    note String
) ENGINE = ReplacingMergeTree
ORDER BY (enterprise_id, alert_id, version);

-- deliveries: each attempt to send an alert to a receiver (webhook, e-mail, DingTalk, WeCom).
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id String,
    alert_id String,
    enterprise_id String,
    receiver String,
    channel String,
    attempt UInt16,
    status String,
    at DateTime,
    at_ms UInt16,
    response_code UInt16,
    error String
) ENGINE = ReplacingMergeTree
ORDER BY (alert_id, delivery_id, attempt)
