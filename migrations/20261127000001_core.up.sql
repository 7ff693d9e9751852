-- Core schema of the Go Dispatch Engine, plus the lease columns in-flight claims need.
CREATE TABLE batches (
    id          UUID PRIMARY KEY,
    total_count INTEGER NOT NULL CHECK (total_count > 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE notifications (
    id                  UUID PRIMARY KEY,
    correlation_id      TEXT NOT NULL,
    idempotency_key     TEXT,
    batch_id            UUID REFERENCES batches (id),
    channel             TEXT NOT NULL CHECK (channel IN ('SMS', 'EMAIL', 'PUSH')),
    priority            TEXT NOT NULL CHECK (priority IN ('HIGH', 'NORMAL', 'LOW')),
    recipient           TEXT NOT NULL,
    content             TEXT NOT NULL,
    status              TEXT NOT NULL
        CHECK (status IN ('ACCEPTED', 'QUEUED', 'SENDING', 'SENT', 'FAILED', 'CANCELED')),
    provider_message_id TEXT,
    attempt_count       INTEGER NOT NULL DEFAULT 0,
    max_retries         INTEGER NOT NULL CHECK (max_retries > 0),
    scheduled_at        TIMESTAMPTZ,
    next_retry_at       TIMESTAMPTZ,
    -- A claim: set with status SENDING; a lease past its expiry is recovered by the scanner.
    lease_token         UUID,
    lease_expires_at    TIMESTAMPTZ,
    last_error          TEXT,
    failure_reason      TEXT,
    -- Set once the dead letter of a FAILED notification is confirmed by the broker.
    dead_lettered_at    TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_notifications_status_channel_created
    ON notifications (status, channel, created_at DESC);
CREATE INDEX idx_notifications_batch_id ON notifications (batch_id) WHERE batch_id IS NOT NULL;
CREATE UNIQUE INDEX uq_notifications_idempotency_key
    ON notifications (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX idx_notifications_retry
    ON notifications (next_retry_at) WHERE status = 'QUEUED' AND next_retry_at IS NOT NULL;
CREATE INDEX idx_notifications_correlation_id ON notifications (correlation_id);
CREATE INDEX idx_notifications_created_at ON notifications (created_at DESC, id DESC);
CREATE INDEX idx_notifications_accepted
    ON notifications (created_at) WHERE status = 'ACCEPTED';
CREATE INDEX idx_notifications_lease
    ON notifications (lease_expires_at) WHERE status = 'SENDING';
CREATE INDEX idx_notifications_dead_letter_pending
    ON notifications (updated_at) WHERE status = 'FAILED' AND dead_lettered_at IS NULL;

CREATE TABLE notification_attempts (
    id              BIGSERIAL PRIMARY KEY,
    notification_id UUID NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    attempt_number  INTEGER NOT NULL,
    outcome         TEXT NOT NULL CHECK (outcome IN ('SUCCESS', 'TRANSIENT', 'PERMANENT')),
    status_code     INTEGER,
    response_body   TEXT,
    error           TEXT,
    duration_ms     INTEGER NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_notification_attempts_notification_id ON notification_attempts (notification_id);
