ALTER TABLE notifications DROP COLUMN IF EXISTS traceparent, DROP COLUMN IF EXISTS tracestate;
