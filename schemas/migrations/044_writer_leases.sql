-- writer_leases: which process writes this database's event log (qrisk.writer_lease).  The embedded
-- pipeline numbers events itself; two of them on one server database would number alike and lose
-- events, so each stamps its row every third of the lease and a second one refuses to start.  A
-- release is a row with released = 1 and a later stamp (the newest stamp of a holder wins).
CREATE TABLE IF NOT EXISTS writer_leases (
    holder String,
    started_ms UInt64,
    renewed_ms UInt64,
    released UInt8
) ENGINE = ReplacingMergeTree(renewed_ms)
ORDER BY holder;
