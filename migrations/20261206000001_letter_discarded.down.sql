ALTER TABLE notifications DROP COLUMN letter_discarded_at;
