-- The queue prefixes whose topology a daemon (serve, worker, scan-retries) declared with this
-- database. Operator commands never declare queues; when QUEUE_PREFIX names none, they list
-- these (those whose queues still exist) so that a mistyped prefix is easy to correct.
CREATE TABLE queue_prefixes (
    prefix           TEXT PRIMARY KEY,
    last_declared_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
