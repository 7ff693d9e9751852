-- A FAILED notification whose dead letter an operator discarded: its letter is meant to be
-- gone from dlq.<channel>, so the scanner's lost-letter rule (a DLQ that holds fewer letters
-- than FAILED rows expect there) does not count it.
ALTER TABLE notifications ADD COLUMN letter_discarded_at TIMESTAMPTZ;
