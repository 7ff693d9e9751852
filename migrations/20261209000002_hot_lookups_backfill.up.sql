-- Back-fills what the triggers of the previous migration keep from now on. Row locks only:
-- notifications is never locked as a table here (the status index still exists, so each
-- statement reads only the unfinished rows).
UPDATE notifications SET due_at = COALESCE(scheduled_at, created_at)
 WHERE status = 'ACCEPTED' AND due_at IS NULL;
-- Entries whose notification moved on or is gone.
DELETE FROM notification_outbox o
 WHERE NOT EXISTS (SELECT 1 FROM notifications n WHERE n.id = o.notification_id AND n.status IN ('QUEUED', 'SENDING'));
-- The entries still owed a first message.
UPDATE notification_outbox o
   SET queue_channel = n.channel, queue_priority = n.priority,
       claimed_at = CASE WHEN n.status = 'SENDING' THEN n.updated_at END
  FROM notifications n WHERE n.id = o.notification_id AND o.queue_channel IS NULL;
-- The rest of QUEUED and SENDING: a QUEUED one without a pending retry was confirmed when
-- it was last stamped (what the lost-message rule read before this migration).
INSERT INTO notification_outbox (notification_id, queue_channel, queue_priority, published_at, claimed_at)
SELECT id, channel, priority,
       CASE WHEN status = 'QUEUED' AND next_retry_at IS NULL THEN updated_at END,
       CASE WHEN status = 'SENDING' THEN updated_at END
  FROM notifications WHERE status IN ('QUEUED', 'SENDING')
ON CONFLICT (notification_id) DO NOTHING;
-- queue_channel and queue_priority stay nullable: a create of the version before this one
-- inserts its outbox entry with the id alone, and the insert's trigger, which fires after
-- it, fills them in the same statement.
