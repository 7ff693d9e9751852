-- An attempt is written only by the statement that records its outcome on the claimed
-- notification (store::lease::record_outcomes_on), so it always names a notification that
-- exists. Checking the foreign key anyway ran one more query per attempt and locked the
-- notification row (FOR KEY SHARE), one more WAL record per attempt: about a tenth of
-- PostgreSQL's CPU under load (docs/PERFORMANCE.md). Prune, the only deleter, deletes a
-- notification's attempts in the statement that deletes it.
ALTER TABLE notification_attempts DROP CONSTRAINT IF EXISTS notification_attempts_notification_id_fkey;
