-- grade_history and spc_signals (migration 004) were planned as analytical copies of the grade
-- evaluations and the control-chart signals, and nothing ever wrote them: grades and signals are
-- effects (kind risk.graded, fluctuation.signal: `effects` embedded, `stream_effects` from the Kafka
-- sink), which the dashboards read, and each credit file's snapshot (`credit_files`) carries its
-- grade history and its charts' signals.  Two tables that stay empty while the README described
-- them as holding data misled whoever queried them; they go.
DROP TABLE IF EXISTS grade_history;
DROP TABLE IF EXISTS spc_signals;
