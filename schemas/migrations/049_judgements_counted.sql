-- The conclusion a sample counts with (processors.judgement.SampleJudgement.counted): its verdict, but 合格
-- where the failure is qrisk's alone (the lab's report passed every failed item and sum, and failed nothing
-- itself).  The dashboards count it; `verdict` stays qrisk's own judgement.  Rows written before it count by
-- their verdict until the tables are derived again (a new FOLD_VERSION rebuilds them).
-- (no IF NOT EXISTS: server 18.16 has none for columns; migrate() takes "already exists" as done)
ALTER TABLE judgements ADD COLUMN counted String DEFAULT verdict;
