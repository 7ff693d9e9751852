ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_failed_has_reason;
DROP TRIGGER IF EXISTS notifications_work_on_update ON notifications;
DROP TRIGGER IF EXISTS notifications_work_on_insert ON notifications;
DROP TRIGGER IF EXISTS notifications_due_at_on_update ON notifications;
DROP TRIGGER IF EXISTS notifications_due_at_on_insert ON notifications;
DROP FUNCTION IF EXISTS notification_work_updated();
DROP FUNCTION IF EXISTS notification_work_inserted();
DROP FUNCTION IF EXISTS notification_due_at();
-- The outbox before this migration held only the entries still owed a first message.
DELETE FROM notification_outbox o USING notifications n
 WHERE n.id = o.notification_id AND NOT (o.published_at IS NULL AND o.claimed_at IS NULL
   AND n.status = 'QUEUED' AND n.next_retry_at IS NULL);
ALTER TABLE notification_outbox
    DROP COLUMN IF EXISTS claimed_at,
    DROP COLUMN IF EXISTS published_at,
    DROP COLUMN IF EXISTS queue_priority,
    DROP COLUMN IF EXISTS queue_channel;
ALTER TABLE notifications DROP COLUMN IF EXISTS due_at;
