-- A Kafka-mode refold (`qrisk rebuild --kafka`): when it ran and the step time before which a notification
-- it derives again is history.  The workers re-derive every alert step from the log, and a step's outbox row
-- is made again for every receiver the policy names now: a receiver added since, or an alert whose steps the
-- new fold numbers differently, would have old alerts sent as news.  The dispatcher records a notification
-- still waiting whose step is older than the latest refold's history_before as not sent (as an embedded
-- rebuild does, qrisk.pipeline.Pipeline._rebuild_deliveries): a decision, neither given up nor re-sent.
CREATE TABLE IF NOT EXISTS refolds (
    refolded_at DateTime,
    refolded_ms UInt16,
    history_before DateTime,
    live_within_hours UInt32,
    log_records UInt64,
    by String
) ENGINE = MergeTree
ORDER BY refolded_at;
