-- no-transaction
-- Built CONCURRENTLY (see 20261209000001): writes go on while it builds. If it fails, it
-- leaves an INVALID index: DROP INDEX CONCURRENTLY idx_outbox_queue, then run migrate again.
CREATE INDEX CONCURRENTLY idx_outbox_queue ON notification_outbox (queue_channel, notification_id);
