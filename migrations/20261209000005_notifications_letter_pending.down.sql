-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS idx_notifications_letter_pending;
