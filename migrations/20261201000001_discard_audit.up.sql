-- `dispatchctl discard` records its runs in the same audit trail as replays.
ALTER TABLE replay_audit DROP CONSTRAINT IF EXISTS replay_audit_source_check;
ALTER TABLE replay_audit ADD CONSTRAINT replay_audit_source_check CHECK (source IN ('dlq', 'db', 'discard'));
