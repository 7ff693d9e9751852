ALTER TABLE notifications DROP COLUMN IF EXISTS traceparent, DROP COLUMN IF EXISTS tracestate, DROP COLUMN IF EXISTS trace_last_span;
