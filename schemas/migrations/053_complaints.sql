-- complaints: one row per complaint or report (投诉举报) of a credit file, for the county board's 投诉举报 panel;
-- the definitions are the register's (GET /v1/complaints, qrisk.registers.complaint_rows): state open / refused (不予受理) /
-- resolved / withdrawn; verified 1 属实, 0 不属实 (concluded), null 核查中; accepted_on the 受理日期 and acceptance the
-- 受理决定 in force (accepted / refused, null before one or for a 举报); due_on the 办结期限 (a 投诉's mediation limit, a
-- 举报's check, extended when approved; null without time limits); overdue 超期未办结 / 超期办结 / 按期办结, null while open
-- in time, once refused or withdrawn, or without time limits (complaint_deadlines off, or folded before they were kept).
-- Written again at each change of the complaint (its events, 受理决定 included; its limit passing; the enterprise's
-- town), by both runtimes: version is the embedded log's seq or the Kafka worker's file version, so FINAL gives the
-- latest.
-- No personal information: neither the complaint's text nor the bureau's outcome (both name complainants) is here;
-- they stay in the credit file, and the register masks them.  Grafana reads these columns.
-- Complaints folded before this table are not in it until the tables are derived again (`qrisk rebuild`,
-- `qrisk rebuild --kafka`, or a new FOLD_VERSION).
CREATE TABLE IF NOT EXISTS complaints (
    enterprise_id String,
    complaint_id String,
    version UInt64,
    town String,
    kind String,
    channel String,
    category String,
    product String,
    received_at DateTime,
    verified Nullable(UInt8),
    state String,
    accepted_on Nullable(Date),
    acceptance Nullable(String),
    resolved_at Nullable(DateTime),
    concluded_on Nullable(Date),
    withdrawn_at Nullable(DateTime),
    due_on Nullable(Date),
    overdue Nullable(String),
    event_id String
) ENGINE = ReplacingMergeTree(version)
ORDER BY (enterprise_id, complaint_id)
