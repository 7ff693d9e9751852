-- One row per `dispatchctl replay` run: who replayed what, and how it went.
CREATE TABLE replay_audit (
    id          UUID PRIMARY KEY,
    operator    TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('dlq', 'db')),
    selection   JSONB NOT NULL,
    dry_run     BOOLEAN NOT NULL DEFAULT false,
    replayed    INTEGER NOT NULL DEFAULT 0,
    skipped     INTEGER NOT NULL DEFAULT 0,
    errors      INTEGER NOT NULL DEFAULT 0,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ
);
