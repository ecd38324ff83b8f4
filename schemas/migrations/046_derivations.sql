-- What derived the derived tables (effects, judgements, sampling_items, alerts, alert_events, outbox,
-- credit_files, checkpoints): the fold version (processors.step.FOLD_VERSION), the standards
-- catalogue's digest and the policy's.  A start whose code or catalogue differs rebuilds them from the
-- log (qrisk.pipeline.Pipeline.recover); before this table, a restart re-derived only the rows past
-- the checkpoint, and an upgraded service kept showing the old code's alerts beside the new fold's.
-- state is 'complete', or 'rebuilding' from the moment a rebuild starts emptying the tables until it
-- has written them again: a crash in between is a rebuild the next start does again.  pending holds,
-- during a rebuild, the notifications that were waiting to be sent when it began (JSON), so that one
-- the rebuilt outbox no longer has is recorded rather than lost.  The newest row (ver) counts.
CREATE TABLE IF NOT EXISTS derivations (
    name String,
    ver UInt64,
    state String,
    fold_version UInt32,
    catalogue String,
    policy String,
    log_seq UInt64,
    written_at DateTime,
    pending String
) ENGINE = ReplacingMergeTree(ver)
ORDER BY name
