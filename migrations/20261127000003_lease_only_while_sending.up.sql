-- Invariant 2 in the schema: a lease token exists only while a notification is SENDING.
-- Every writer already keeps it (a claim sets both together, every outcome and recovery
-- clears the token); the hot path relies on it to guard outcomes by the token alone.
-- Checking the existing rows scans the table once while holding its lock.
ALTER TABLE notifications
    ADD CONSTRAINT notifications_lease_only_while_sending
    CHECK (lease_token IS NULL OR status = 'SENDING');
