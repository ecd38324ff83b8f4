-- The labs' time limits (sampling_turnaround, FOLD_VERSION 42) on the judgements rows, for the county board's
-- 检验机构报告时限 panel: lab, the lab as the report printed it; report_working_days / report_limit, the working days
-- the report took (from the lab's receipt, or from sampling without a receipt date) and its limit, null where the
-- sample was not judged for it (a re-test, a row written before); turnaround_late, 1 when the sample reached the lab
-- or its report came late.  A correction carries its sample's first report's figures (SampleRecord.turnaround).
-- Rows written before stay empty / null until the tables are derived again (a new FOLD_VERSION rebuilds them).
-- (no IF NOT EXISTS: server 18.16 has none for columns; migrate() takes "already exists" as done)
ALTER TABLE judgements ADD COLUMN lab String DEFAULT '';
ALTER TABLE judgements ADD COLUMN report_working_days Nullable(Int32);
ALTER TABLE judgements ADD COLUMN report_limit Nullable(Int32);
ALTER TABLE judgements ADD COLUMN turnaround_late UInt8 DEFAULT 0;
