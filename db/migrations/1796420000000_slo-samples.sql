-- Up Migration
-- What the SLO report (GET /v1/reports/slo, seed 003 §6) reads besides run_events: every activity
-- attempt's queue wait (schedule-to-start) and duration, and every model request's route, fallback,
-- latency and tokens per second. Workers with DATABASE_URL write them in batches (common/slo-samples.ts)
-- unless METRICS_ENABLED=false; the API prunes them with RETENTION_EVENTS_DAYS.
CREATE TABLE step_attempts (
  at          timestamptz NOT NULL,
  lane        text        NOT NULL,
  kind        text        NOT NULL,
  task_queue  text        NOT NULL,
  activity    text        NOT NULL,
  priority    smallint    NOT NULL,
  wait_ms     integer     NOT NULL,
  duration_ms integer     NOT NULL,
  outcome     text        NOT NULL
);
CREATE INDEX step_attempts_by_time ON step_attempts (at);

CREATE TABLE model_requests (
  at                timestamptz NOT NULL,
  lane              text        NOT NULL,
  requested         text        NOT NULL,
  route             text,
  provider          text,
  first_cloud       boolean     NOT NULL,
  cloud             boolean     NOT NULL,
  fell_back         boolean     NOT NULL,
  outcome           text        NOT NULL,
  latency_ms        integer     NOT NULL,
  tokens_per_second real
);
CREATE INDEX model_requests_by_time ON model_requests (at);

-- The report counts run outcomes of a tenant in a window.
CREATE INDEX run_events_by_tenant_type_time ON run_events (tenant, type, time);

-- Down Migration
DROP INDEX run_events_by_tenant_type_time;
DROP TABLE model_requests;
DROP TABLE step_attempts;
