-- Up Migration
-- Starts the admission stage deferred (api/admission.ts, docs/lanes.md "Admission"): accepted with
-- 202, kept here until the dispatcher starts them in Temporal, then deleted. The run id is the
-- workflow id the run will have, so an idempotency key dedupes a deferred start like a started one.
-- `spec` is the whole start request (interpreter input, memo, search attributes, timeout); nothing
-- is recomputed when it starts. Order: priority key (urgent 1 first), then arrival (seq).
CREATE TABLE admission_queue (
  run_id        text        PRIMARY KEY,
  seq           bigint      GENERATED ALWAYS AS IDENTITY,
  lane          text        NOT NULL,
  priority_key  integer     NOT NULL,
  tenant        text        NOT NULL,
  definition    text        NOT NULL,
  version       text        NOT NULL,
  started_by    text        NOT NULL,
  correlation_id text       NOT NULL,
  request_hash  text        NOT NULL,
  reason        text        NOT NULL,
  spec          jsonb       NOT NULL,
  enqueued_at   timestamptz NOT NULL DEFAULT now(),
  attempts      integer     NOT NULL DEFAULT 0,
  last_error    text
);

CREATE INDEX admission_queue_order ON admission_queue (lane, priority_key, seq);
CREATE INDEX admission_queue_by_tenant ON admission_queue (tenant, seq);

-- Down Migration
DROP TABLE admission_queue;
