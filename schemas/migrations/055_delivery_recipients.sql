-- deliveries.accepted: the e-mail addresses that took a notification on an attempt that others of the receiver's `to`
-- refused (452 mailbox full).  The dispatcher mails the next attempt, and a re-queue, to the others alone: retried whole,
-- the ones who had it got it again at every retry, some 150 times over the 24 h window.  Empty for every other attempt.
-- outbox.received_at: when the event that made the notification's step was received (the Kafka workers' rows; 1970 on
-- the embedded pipeline's and on rows written before).  A Kafka refold withholds as history what it derives again for
-- steps before its history_before; a live event received after the refold but dated days back is not one of those.
-- (no IF NOT EXISTS: server 18.16 has none for columns; migrate() takes "already exists" as done)
ALTER TABLE deliveries ADD COLUMN accepted Array(String) DEFAULT [];
ALTER TABLE outbox ADD COLUMN received_at DateTime DEFAULT toDateTime(0);
-- The embedded pipeline's view fills it (server 18.16 fills no column a view to a table leaves out): 1970, as before.
DROP TABLE IF EXISTS alert_steps_outbox_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS alert_steps_outbox_mv TO outbox AS
SELECT delivery_id, alert_id, enterprise_id, receiver, channel, reason, at AS created_at, at_ms AS created_ms, body,
       toDateTime(0) AS received_at
FROM alert_steps_in
ARRAY JOIN delivery_id, receiver, channel, reason, body;
