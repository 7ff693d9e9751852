DROP TABLE replay_audit;
