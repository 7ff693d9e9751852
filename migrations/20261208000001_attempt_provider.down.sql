ALTER TABLE notification_attempts DROP COLUMN IF EXISTS provider;
