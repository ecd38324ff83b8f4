-- The event a dead letter is about: the refused document's own event_id, spelt as the log spells it (a UUID
-- lower case with dashes; other text as sent, trimmed), '' when the input names none (a batch refused whole, bytes
-- that are no JSON or no object, a CSV row without the column, a message of the sink's that is no event).  With it
-- GET /v1/dead-letters says whether the event has since been logged (settled_by, ?outstanding=) and the intake
-- board lists what is still to do.  Written by both runtimes (embedded: the pipeline; Kafka: the letter's JSON on
-- the dead-letter topic, which the sink copies).  Letters kept before it stay '' and read as outstanding.
-- (no IF NOT EXISTS: server 18.16 has none for columns; migrate() takes "already exists" as done)
ALTER TABLE dead_letters ADD COLUMN event_id String DEFAULT ''
