-- no-transaction
-- Built CONCURRENTLY (see 20261209000001): writes go on while it builds. If it fails, it
-- leaves an INVALID index: DROP INDEX CONCURRENTLY idx_notifications_letters, then run migrate again.
CREATE INDEX CONCURRENTLY idx_notifications_letters ON notifications (channel, dead_lettered_at) WHERE failure_reason IS NOT NULL AND letter_discarded_at IS NULL;
