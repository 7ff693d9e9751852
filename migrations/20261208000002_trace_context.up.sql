-- The W3C trace context (traceparent, tracestate) a create request brought, continued on every
-- provider call, and the span id of the last provider call (a retry's span links to it).
-- Nullable, no default, in no index: adding them rewrites nothing, and updates that do not
-- touch them stay as HOT as before.
ALTER TABLE notifications
    ADD COLUMN traceparent TEXT,
    ADD COLUMN tracestate TEXT,
    ADD COLUMN trace_last_span TEXT;
