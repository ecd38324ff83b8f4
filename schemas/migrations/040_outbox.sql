-- outbox: every notification of an alert to a receiver, stored with the alert step that made it and
-- before anything is sent (the deliveries table records each attempt).  delivery_id is a hash of
-- (alert, step, receiver): re-deriving the step after a crash writes the same row again, and the
-- dispatcher, which skips ids with a final attempt, does not send it twice.
CREATE TABLE IF NOT EXISTS outbox (
    delivery_id String,
    alert_id String,
    enterprise_id String,
    receiver String,
    channel String,
    reason String,
    created_at DateTime,
    created_ms UInt16,
    body String
) ENGINE = ReplacingMergeTree
ORDER BY delivery_id;
