-- Up Migration
-- Lifecycle events of runs (seed 004 §6), written by the platform activity `recordRunEvents`. The id
-- (`<runId>/event/<seq>`) is stable across activity retries and workflow replays, so an event is
-- stored once; rows are never updated.
CREATE TABLE run_events (
  id             text        PRIMARY KEY,
  run_id         text        NOT NULL,
  seq            integer     NOT NULL,
  type           text        NOT NULL,
  tenant         text        NOT NULL,
  definition     text        NOT NULL,
  version        text        NOT NULL,
  correlation_id text        NOT NULL,
  causation_id   text,
  time           timestamptz NOT NULL,
  data           jsonb       NOT NULL,
  recorded_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX run_events_by_run ON run_events (run_id, seq);

-- Webhook subscriptions of a tenant. The secret signs deliveries (Standard Webhooks), so it is kept
-- as written; the API shows it once, at creation.
CREATE TABLE webhook_subscriptions (
  id              text        PRIMARY KEY,
  tenant          text        NOT NULL,
  url             text        NOT NULL,
  secret          text        NOT NULL,
  events          text[]      NOT NULL,  -- patterns: an exact type, `workflow.step.*`, `workflow.*`, `*`
  definitions     text[],                -- definition names; NULL = every definition
  enabled         boolean     NOT NULL DEFAULT true,
  disabled_reason text,
  description     text,
  created_by      text        NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhook_subscriptions_by_tenant ON webhook_subscriptions (tenant, created_at);

-- One row per (subscription, event): the outbox the API's dispatcher drains. `delivering` rows are
-- claimed (FOR UPDATE SKIP LOCKED) with a lease in next_attempt_at: a dispatcher that dies mid-send
-- leaves the row to be claimed again once the lease has passed.
CREATE TABLE webhook_deliveries (
  id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subscription_id text        NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
  event_id        text        NOT NULL REFERENCES run_events (id),
  status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivering', 'delivered', 'dead')),
  attempts        integer     NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_status     integer,
  last_error      text,
  delivered_at    timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (subscription_id, event_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status IN ('pending', 'delivering');
CREATE INDEX webhook_deliveries_by_subscription ON webhook_deliveries (subscription_id, status, id);

-- Down Migration
DROP TABLE webhook_deliveries;
DROP TABLE webhook_subscriptions;
DROP TABLE run_events;
