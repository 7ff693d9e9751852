DELETE FROM notification_attempts a WHERE NOT EXISTS (SELECT 1 FROM notifications n WHERE n.id = a.notification_id);
ALTER TABLE notification_attempts
    ADD CONSTRAINT notification_attempts_notification_id_fkey
    FOREIGN KEY (notification_id) REFERENCES notifications (id) ON DELETE CASCADE;
