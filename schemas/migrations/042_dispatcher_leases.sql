-- dispatcher_leases: which outbox dispatcher sends when several run against one server (a scaled
-- compose service, a cron `--once` next to a daemon).  Each renews its row every third of the lease
-- time; among those renewed within the lease, the one that started first sends and the others stand
-- by.  ClickHouse has no compare-and-set, so a newcomer waits one lease time before it may send: by
-- then it has seen every live dispatcher's renewal, and all of them agree on who sends.
CREATE TABLE IF NOT EXISTS dispatcher_leases (
    holder String,
    started_ms UInt64,
    renewed_ms UInt64
) ENGINE = ReplacingMergeTree(renewed_ms)
ORDER BY holder;
