-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS idx_notifications_due;
