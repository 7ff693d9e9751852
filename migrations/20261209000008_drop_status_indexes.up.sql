-- The last step of 20261209000001: the indexes that named `status`, `lease_expires_at` or
-- `updated_at` go, so the claim and the outcome are HOT updates from now on. A DROP INDEX
-- holds its table's exclusive lock only for the catalog change; lock_timeout makes it give
-- up (and migrate fail, to be run again) rather than queue every query behind a long one.
SET LOCAL lock_timeout = '10s';
DROP INDEX idx_notifications_status_channel_created, idx_notifications_retry, idx_notifications_accepted,
    idx_notifications_lease, idx_notifications_dead_letter_pending;
-- Room on each page for the claim's and the outcome's new versions of its rows: a HOT
-- update needs the new version on the old one's page. New pages only; existing ones keep
-- what they have.
ALTER TABLE notifications SET (fillfactor = 50);
