-- Every rejected input, with what was received and why, so nothing is lost.
-- Keyed by dead_letter_id alone: the same letter written again (a retry, a replay) collapses.
CREATE TABLE IF NOT EXISTS dead_letters (
    dead_letter_id String,
    received_at DateTime,
    received_ms UInt16,
    channel String,
    position String,
    raw String,
    raw_encoding String,
    reason String,
    errors String
) ENGINE = ReplacingMergeTree ORDER BY dead_letter_id
