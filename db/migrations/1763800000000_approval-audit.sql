-- Up Migration
-- The approval audit trail: every decision (accepted) and every refused attempt, via the API or a
-- Temporal UI signal. Rows are written once (the id is stable across activity retries) and never
-- updated. Accepted decisions and refused signals are written by the workflow's audit activity;
-- refused API attempts, which never reach the workflow's history, by the API.
CREATE TABLE approval_audit (
  id          text        PRIMARY KEY,
  tenant      text        NOT NULL,
  run_id      text        NOT NULL,
  definition  text        NOT NULL,
  version     text        NOT NULL,
  step_id     text        NOT NULL,
  step_path   text,
  principal   text        NOT NULL,
  decision    text        NOT NULL,
  comment     text,
  via         text        NOT NULL CHECK (via IN ('api', 'signal')),
  outcome     text        NOT NULL CHECK (outcome IN ('accepted', 'refused')),
  code        text,
  reason      text,
  at          timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX approval_audit_by_run ON approval_audit (tenant, run_id, at);

-- Down Migration
DROP TABLE approval_audit;
