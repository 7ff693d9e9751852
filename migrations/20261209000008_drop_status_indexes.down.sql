ALTER TABLE notifications RESET (fillfactor);
CREATE INDEX IF NOT EXISTS idx_notifications_status_channel_created
    ON notifications (status, channel, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_notifications_retry
    ON notifications (next_retry_at) WHERE status = 'QUEUED' AND next_retry_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_notifications_accepted
    ON notifications (created_at) WHERE status = 'ACCEPTED';
CREATE INDEX IF NOT EXISTS idx_notifications_lease
    ON notifications (lease_expires_at) WHERE status = 'SENDING';
CREATE INDEX IF NOT EXISTS idx_notifications_dead_letter_pending
    ON notifications (updated_at) WHERE status = 'FAILED' AND dead_lettered_at IS NULL;
