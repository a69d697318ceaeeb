-- The W3C traceparent of the activity that recorded each lifecycle event (common/tracing.ts): its
-- webhook deliveries carry it as the CloudEvents distributed-tracing extension and are sent inside
-- that trace. NULL for events recorded without tracing, and for events from before.
ALTER TABLE run_events ADD COLUMN traceparent text;
