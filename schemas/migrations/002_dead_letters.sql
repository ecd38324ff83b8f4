-- Every rejected input, with what was received and why, so nothing is lost.
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
) ENGINE = ReplacingMergeTree ORDER BY (received_at, dead_letter_id)
