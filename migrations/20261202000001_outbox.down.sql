-- The versions before the outbox find a never-published notification by its ACCEPTED status.
UPDATE notifications SET status = 'ACCEPTED'
 WHERE status = 'QUEUED' AND next_retry_at IS NULL
   AND id IN (SELECT notification_id FROM notification_outbox);
DROP TABLE notification_outbox;
