-- The start of a dead letter's input with the personal information in it masked (qrisk.pipeline.letter_preview:
-- names, mobile, landline and ID card numbers, e-mail, a home's door numbers), written with the letter by both
-- runtimes (embedded: the pipeline; Kafka: the sink, from the letter on the dead-letter topic).  The intake board
-- shows it, and the Grafana reader is granted it instead of `raw`: a refused complaint's body names its caller, and
-- that reader may not read event bodies.  Letters kept before it stay '' (the board says so); their raw bytes
-- are on GET /v1/dead-letters as before.
-- (no IF NOT EXISTS: server 18.16 has none for columns; migrate() takes "already exists" as done)
ALTER TABLE dead_letters ADD COLUMN raw_preview String DEFAULT ''
