-- Up Migration
-- A run reset to an earlier point (POST /v1/runs/{id}/retry) numbers its lifecycle events again
-- from there, so its new events would reuse ids the failed attempt already stored. Such an event
-- is stored under the run's next free number instead; source_id is the id the workflow gave it and
-- source_exec the execution that sent it, so a re-sent batch still writes it once.
ALTER TABLE run_events ADD COLUMN source_id text, ADD COLUMN source_exec text;
CREATE INDEX run_events_renumbered ON run_events (run_id, source_exec) WHERE source_exec IS NOT NULL;

-- Down Migration
DROP INDEX run_events_renumbered;
ALTER TABLE run_events DROP COLUMN source_id, DROP COLUMN source_exec;
