-- no-transaction
-- Built CONCURRENTLY (see 20261209000001): writes go on while it builds. If it fails, it
-- leaves an INVALID index: DROP INDEX CONCURRENTLY idx_notifications_retry_due, then run migrate again.
CREATE INDEX CONCURRENTLY idx_notifications_retry_due ON notifications (next_retry_at) WHERE next_retry_at IS NOT NULL;
