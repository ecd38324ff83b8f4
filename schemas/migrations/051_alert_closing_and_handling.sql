-- Two things the dashboards could not show, since their reader is not granted the alert's JSON view (`evidence`):
-- why a supervisor closed an alert (the close step's note: the panels' 关闭原因 read only the system's own closings,
-- from the effects) and an alert acknowledged and left past its handling deadline (warnings.handle_within_hours:
-- 已确认超时未处置).  closing_note / closed_by: the note of the step that closed the alert and who took it (系统 for the
-- system's own), empty unless it is closed; handling_overdue: 1 while it is acknowledged and was escalated for its
-- handling deadline.  Rows written before stay empty / 0 (the panels fall back to the effects' reason for those)
-- until the tables are derived again (a new FOLD_VERSION rebuilds them).
-- (no IF NOT EXISTS: server 18.16 has none for columns; migrate() takes "already exists" as done)
ALTER TABLE alerts ADD COLUMN closing_note String DEFAULT '';
ALTER TABLE alerts ADD COLUMN closed_by String DEFAULT '';
ALTER TABLE alerts ADD COLUMN handling_overdue UInt8 DEFAULT 0;
ALTER TABLE alert_steps_in ADD COLUMN closing_note String DEFAULT '';
ALTER TABLE alert_steps_in ADD COLUMN closed_by String DEFAULT '';
ALTER TABLE alert_steps_in ADD COLUMN handling_overdue UInt8 DEFAULT 0;
-- the view of migration 041 names its columns: made again with the new ones (a crash in between makes it again)
DROP TABLE IF EXISTS alert_steps_alerts_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS alert_steps_alerts_mv TO alerts AS
SELECT alert_id, enterprise_id, kind, severity, state, title, group_key, assignee, opened_at, updated_at, updated_ms,
       version, event_id, evidence, closing_note, closed_by, handling_overdue
FROM alert_steps_in;
