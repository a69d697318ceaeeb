-- Up Migration
-- What operators did through the API (docs/OPERATIONS.md): pausing and resuming a lane, retrying
-- runs. One row per accepted action, written before it is answered. With an Idempotency-Key the
-- row is also the action's idempotency record: the same key (tenant, action) answers the stored
-- result again instead of acting twice.
CREATE TABLE operations_audit (
  id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at              timestamptz NOT NULL DEFAULT now(),
  tenant          text        NOT NULL,
  principal       text        NOT NULL,
  action          text        NOT NULL,   -- lane.pause, lane.resume, run.retry, runs.retry
  target          text        NOT NULL,   -- the lane, the run id, or the bulk filter as text
  idempotency_key text,
  request_hash    text        NOT NULL,
  request         jsonb       NOT NULL,
  result          jsonb       NOT NULL,
  correlation_id  text
);

CREATE UNIQUE INDEX operations_audit_idempotency ON operations_audit (tenant, action, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX operations_audit_by_time ON operations_audit (at DESC);

-- Down Migration
DROP TABLE operations_audit;
