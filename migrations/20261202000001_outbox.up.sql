-- The transactional outbox. A due notification is QUEUED from its first commit, and its id
-- stays here until the broker confirmed its first work message: the create's background
-- publisher (or the scanner's unpublished pass) deletes it then. Whether a notification was
-- published is kept apart from its row because marking the row itself rewrote it in every
-- index of the table (a status change is never a HOT update here), while an insert and a
-- delete here touch one small heap and its primary key.
-- No foreign key: checking one locks the new notification row (FOR KEY SHARE), one more WAL
-- record per create. Prune deletes the entries of the rows it deletes, and the scanner those
-- of rows that moved on (claimed, canceled) before their entry went.
CREATE TABLE notification_outbox (
    notification_id UUID PRIMARY KEY
);
