DELETE FROM replay_audit WHERE source = 'discard';
ALTER TABLE replay_audit DROP CONSTRAINT IF EXISTS replay_audit_source_check;
ALTER TABLE replay_audit ADD CONSTRAINT replay_audit_source_check CHECK (source IN ('dlq', 'db'));
