-- Up Migration
-- The workers' log lines of each run (level info and above), so `GET /v1/runs/{id}/logs` and
-- `workflow logs` show them beside the lifecycle events. Written in batches by each worker
-- process (activities/platform/run-logs.ts), bounded per run and per line there, redacted as the
-- workers' stdout is; pruned with the run's events (RETENTION_EVENTS_DAYS, api/retention.ts).
CREATE TABLE run_logs (
  id         bigserial   PRIMARY KEY,
  run_id     text        NOT NULL,
  tenant     text        NOT NULL,
  time       timestamptz NOT NULL,
  level      text        NOT NULL,
  lane       text,
  step_id    text,
  attempt    integer,
  definition text,
  version    text,
  msg        text        NOT NULL,
  fields     jsonb       NOT NULL DEFAULT '{}'::jsonb,
  recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX run_logs_by_run ON run_logs (tenant, run_id, id);
CREATE INDEX run_logs_by_recorded_at ON run_logs (recorded_at);

-- Down Migration
DROP TABLE run_logs;
