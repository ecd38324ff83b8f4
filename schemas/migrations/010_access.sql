-- Access control: the audit trail (who did what).  One row per write or refused attempt:
-- events posted / rejected / forbidden, access denied (a valid key on a route its role may
-- not use), and key changes (copied from the key file, which `qrisk keys` writes while
-- the server runs).  key_id / key_name / role name the caller; actor is the CLI user for
-- key changes.  detail is JSON.
-- Keyed by (time, audit_id): a key-file entry copied again after a restart collapses; read with FINAL.
CREATE TABLE IF NOT EXISTS audit_log (
    audit_id String,
    recorded_at DateTime,
    recorded_ms UInt16,
    key_id String,
    key_name String,
    role String,
    actor String,
    action String,
    outcome String,
    detail String
) ENGINE = ReplacingMergeTree ORDER BY (recorded_at, audit_id)
