-- no-transaction
-- Built CONCURRENTLY (see 20261209000001): writes go on while it builds. If it fails, it
-- leaves an INVALID index: DROP INDEX CONCURRENTLY idx_notifications_letter_pending, then run migrate again.
CREATE INDEX CONCURRENTLY idx_notifications_letter_pending ON notifications (id) WHERE failure_reason IS NOT NULL AND dead_lettered_at IS NULL;
