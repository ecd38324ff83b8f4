-- Whether a row's working-day figures are estimates (估算): a day they count lies in a year the working-day calendar
-- (schemas.working_days) does not hold, counted Monday–Friday as the register, the credit report and the alert texts
-- say.  judgements.turnaround_estimate: report_working_days / report_limit / turnaround_late rest on such a count
-- (the fold's Turnaround.estimate; 0 where the sample was not judged for the labs' time limits).
-- complaints.estimate: due_on / overdue rest on one (any of the complaint's time limits is an estimate, as its
-- 办结期限 line says); 0 without time limits.
-- Rows written before stay 0 until the tables are derived again (`qrisk rebuild`, `qrisk rebuild --kafka`, or a new
-- FOLD_VERSION).
-- (no IF NOT EXISTS: server 18.16 has none for columns; migrate() takes "already exists" as done)
ALTER TABLE judgements ADD COLUMN turnaround_estimate UInt8 DEFAULT 0;
ALTER TABLE complaints ADD COLUMN estimate UInt8 DEFAULT 0;
