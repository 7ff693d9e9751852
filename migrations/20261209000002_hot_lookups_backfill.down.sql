ALTER TABLE notification_outbox
    ALTER COLUMN queue_channel DROP NOT NULL,
    ALTER COLUMN queue_priority DROP NOT NULL;
