-- Indexes for retention (api/retention.ts): the API prunes final webhook deliveries and the
-- lifecycle events of long-quiet runs by age, every RETENTION_INTERVAL_SECONDS.
CREATE INDEX webhook_deliveries_final_by_age ON webhook_deliveries (updated_at) WHERE status IN ('delivered', 'dead');
CREATE INDEX run_events_by_recorded ON run_events (run_id, recorded_at);
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id);
