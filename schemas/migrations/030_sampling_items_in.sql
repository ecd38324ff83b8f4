-- sampling_items written one row per sample instead of one row per item and value.
-- The embedded pipeline inserts a sample's items as parallel arrays (item-level columns, and the
-- values / not-detected flags as one array per item) into sampling_items_in; the Null engine keeps
-- nothing, and the materialised view below unfolds every insert into the sampling_items rows that
-- the pipeline used to build itself.  Building ~17 rows per sample in Python cost more than the fold
-- of the event; ClickHouse unfolds them in C++ in the same INSERT.  A crash between the two is not
-- possible (one INSERT); an INSERT repeated after a crash collapses in sampling_items by its key.
-- The Kafka sink writes the same one-row-per-sample form (effect messages from before it still
-- carry sampling_items rows, which the sink inserts directly).
CREATE TABLE IF NOT EXISTS sampling_items_in (
    event_id String,
    enterprise_id String,
    category String,
    sample_no String,
    product String,
    lab String,
    sampled_on Date,
    production_date Nullable(Date),
    occurred_at DateTime,
    item_code Array(String),
    item_name Array(String),
    item_class Array(String),
    unit Array(String),
    limit_text Array(String),
    standard Array(String),
    verdict Array(String),
    reason Array(String),
    lab_verdict Array(String),
    item_values Array(Array(Nullable(Float64))),
    item_nd Array(Array(UInt8))
) ENGINE = Null;

-- ARRAY JOIN gives one row per item; arrayJoin over the item's value positions one row per value
-- (the same arrayJoin expression, repeated, is evaluated once: a 1-based position).  A view's
-- SELECT may output only target columns, so the position has no alias of its own.
-- Server 18.16 and current releases both accept this form.
CREATE MATERIALIZED VIEW IF NOT EXISTS sampling_items_mv TO sampling_items AS
SELECT
    event_id, enterprise_id, category, sample_no, product, lab,
    item_code, item_name, item_class,
    toUInt8(arrayJoin(arrayEnumerate(item_values)) - 1) AS value_index,
    item_values[arrayJoin(arrayEnumerate(item_values))] AS value,
    item_nd[arrayJoin(arrayEnumerate(item_values))] AS not_detected,
    unit, limit_text, standard, verdict, reason, lab_verdict,
    sampled_on, production_date, occurred_at
FROM sampling_items_in
ARRAY JOIN item_code, item_name, item_class, unit, limit_text, standard, verdict, reason, lab_verdict, item_values, item_nd
