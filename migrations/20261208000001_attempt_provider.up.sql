-- Which provider (kind and host: "webhook hooks.example.com", "smtp mail.example.com:587")
-- each attempt went to, now that channels deliver to providers of their own. Nullable and
-- without a default, so adding it rewrites nothing: instant on a table of any size.
ALTER TABLE notification_attempts ADD COLUMN provider TEXT;
