-- Alert steps written by the embedded pipeline in one INSERT instead of three.  A row is one step
-- of one alert: the alert's columns (as the alerts table has them), the step's (as alert_events),
-- and the step's notifications as parallel arrays (as outbox rows).  The Null engine keeps
-- nothing; the three views below fan each insert out.  chdb spends ~3 ms of CPU on any INSERT,
-- whatever its size: three per derived batch cost ~15 µs per event in bench_embedded.
-- Within a batch only an alert's newest row carries its JSON view (`evidence`); the rows of its
-- earlier steps there have an empty one and a lower version, so the alerts table (highest version
-- wins) never shows them.  An INSERT repeated after a crash collapses by each table's key.
CREATE TABLE IF NOT EXISTS alert_steps_in (
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
    evidence String,
    step_version UInt64,
    at DateTime,
    at_ms UInt16,
    action String,
    from_state String,
    to_state String,
    actor String,
    note String,
    delivery_id Array(String),
    receiver Array(String),
    channel Array(String),
    reason Array(String),
    body Array(String)
) ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS alert_steps_alerts_mv TO alerts AS
SELECT alert_id, enterprise_id, kind, severity, state, title, group_key, assignee, opened_at, updated_at, updated_ms,
       version, event_id, evidence
FROM alert_steps_in;

CREATE MATERIALIZED VIEW IF NOT EXISTS alert_steps_events_mv TO alert_events AS
SELECT alert_id, enterprise_id, step_version AS version, at, at_ms, action, from_state, to_state, actor, note
FROM alert_steps_in;

CREATE MATERIALIZED VIEW IF NOT EXISTS alert_steps_outbox_mv TO outbox AS
SELECT delivery_id, alert_id, enterprise_id, receiver, channel, reason, at AS created_at, at_ms AS created_ms, body
FROM alert_steps_in
ARRAY JOIN delivery_id, receiver, channel, reason, body;
