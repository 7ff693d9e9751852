-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS idx_outbox_queue;
